package main

import (
	"context"
	"regexp"
	"strings"
	"testing"

	"github.com/odavl/sync/libs/mongodb"
)

// TestStoreCommand runs `odavl-sync store` as the local cluster does: it
// prints the MONGO_URI it listens on, the URI answers, a second store on
// the same directory refuses to start naming the holder, and a bad flag is
// named.
func TestStoreCommand(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	out, errOut := &syncBuffer{}, &syncBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"store", "--data", data, "--listen", "127.0.0.1:0"}, func(string) string { return "" }, strings.NewReader(""), out, errOut)
	}()
	uri := regexp.MustCompile(`MONGO_URI=(\S+)`)
	eventually(t, "the store's MONGO_URI line", func() bool { return uri.MatchString(out.String()) })
	mc, err := mongodb.Connect(context.Background(), uri.FindStringSubmatch(out.String())[1])
	if err != nil {
		t.Fatal(err)
	}
	if err := mongodb.Ping(context.Background(), mc); err != nil {
		t.Errorf("the store does not answer: %v", err)
	}
	_ = mc.Disconnect(context.Background())

	second := &syncBuffer{}
	if code := run(context.Background(), []string{"store", "--data", data, "--listen", "127.0.0.1:0"}, func(string) string { return "" }, strings.NewReader(""), &syncBuffer{}, second); code == 0 ||
		!strings.Contains(second.String(), "in use by pid") {
		t.Errorf("a second store on the directory: exit %d, %q; want a refusal naming the holder's pid", code, second.String())
	}
	bad := &syncBuffer{}
	if code := run(context.Background(), []string{"store", "--data", t.TempDir(), "--log-level", "loud"}, func(string) string { return "" }, strings.NewReader(""), &syncBuffer{}, bad); code == 0 ||
		!strings.Contains(bad.String(), "--log-level") {
		t.Errorf("--log-level loud: exit %d, %q; want it named", code, bad.String())
	}

	cancel()
	if code := <-done; code != 0 {
		t.Errorf("store exited %d at stop: %s", code, errOut.String())
	}
}
