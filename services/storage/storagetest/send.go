package storagetest

import (
	"bytes"
	"io"
	"net/http"
	"testing"
)

// Answer is what a server answered to Send (Status 0: no answer).
type Answer struct {
	Status int
	Header http.Header
	Body   []byte
}

// Send sends a request straight to u (a signed URL, say), as a client
// would. A server may refuse a large body before reading it and close the
// connection: that is logged and answered as status 0.
func Send(tb testing.TB, method, u string, headers map[string]string, body []byte) Answer {
	tb.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		tb.Fatal(err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	if body != nil {
		req.ContentLength = int64(len(body))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Logf("%s %s: %v", method, u, err)
		return Answer{}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return Answer{resp.StatusCode, resp.Header, b}
}
