package storage_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/odavl/sync/libs/mongotest"
	"github.com/odavl/sync/libs/natstest"
	"github.com/odavl/sync/libs/rpc"
	"github.com/odavl/sync/services/storage"
)

func TestConfigFromEnv(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		env     map[string]string
		want    string
		wantErr string
	}{
		{"default is local", nil, "local", ""},
		{"S3 variables select s3", map[string]string{"S3_BUCKET_NAME": "b", "AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s"}, "s3", ""},
		{"Azure variables select azure", map[string]string{"AZURE_STORAGE_ACCOUNT_NAME": "a", "AZURE_STORAGE_ACCOUNT_KEY": "k"}, "azure", ""},
		{"explicit wins", map[string]string{"STORAGE_PROVIDER": "local", "S3_BUCKET_NAME": "b"}, "local", ""},
		{"s3 needs a bucket", map[string]string{"STORAGE_PROVIDER": "s3"}, "", "S3_BUCKET_NAME"},
		{"azure needs a key", map[string]string{"AZURE_STORAGE_ACCOUNT_NAME": "a"}, "", "AZURE_STORAGE_ACCOUNT_KEY"},
		{"both need a choice", map[string]string{"S3_BUCKET_NAME": "b", "AZURE_STORAGE_ACCOUNT_NAME": "a", "AZURE_STORAGE_ACCOUNT_KEY": "k"}, "", "STORAGE_PROVIDER"},
		{"unknown provider", map[string]string{"STORAGE_PROVIDER": "gcs"}, "", "STORAGE_PROVIDER"},
		{"bad interval", map[string]string{"STORAGE_CLEANUP_INTERVAL": "soon"}, "", "STORAGE_CLEANUP_INTERVAL"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := storage.ConfigFromEnv(func(k string) string { return c.env[k] })
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("err = %v; want one naming %s", err, c.wantErr)
				}
				return
			}
			if err != nil || cfg.Provider != c.want {
				t.Fatalf("provider %q, %v; want %q", cfg.Provider, err, c.want)
			}
		})
	}
	cfg, _ := storage.ConfigFromEnv(func(k string) string {
		return map[string]string{"S3_BUCKET_NAME": "b", "AWS_ACCESS_KEY_ID": "AKIA", "AWS_SECRET_ACCESS_KEY": "topsecretvalue"}[k]
	})
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("cfg", "config", cfg)
	if strings.Contains(buf.String(), "topsecretvalue") {
		t.Errorf("the secret is logged: %s", buf.String())
	}
}

// TestStandaloneServesBlobs runs the service as its own binary does: the
// local provider's URLs are served on STORAGE_ADDR.
func TestStandaloneServesBlobs(t *testing.T) {
	nb := natstest.Start(t)
	mb := mongotest.Start(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cfg, err := storage.ConfigFromEnv(func(k string) string {
		return map[string]string{"STORAGE_DATA_DIR": t.TempDir(), "STORAGE_ADDR": addr}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := storage.New(slog.New(slog.NewTextHandler(io.Discard, nil)), nb.Conn, mb.DB, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	for !svc.Ready() {
		time.Sleep(5 * time.Millisecond)
	}
	caller := rpc.Caller{Tenant: rpc.Tenant{OrganizationID: "o1", ProjectID: "p1"}, KeyID: "key_1"}
	body := []byte("a,b\n1,2\n")
	u, err := rpc.Call[rpc.UploadURLResponse](ctx, nb.Conn, rpc.StorageUploadURL, rpc.UploadURLRequest{Caller: caller, Filename: "t.csv", ContentType: "text/csv", Size: int64(len(body))})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(u.UploadURL, "http://"+addr+"/blob/") {
		t.Fatalf("upload URL %s is not on STORAGE_ADDR %s", u.UploadURL, addr)
	}
	req, _ := http.NewRequest(u.Instructions.Method, u.UploadURL, bytes.NewReader(body))
	for k, v := range u.Instructions.Headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("upload: %v %v", resp, err)
	}
	resp.Body.Close()
	f, err := rpc.Call[rpc.File](ctx, nb.Conn, rpc.StorageConfirm, rpc.FileRequest{Caller: caller, FileID: u.FileID})
	if err != nil || f.Status != rpc.FileUploaded {
		t.Fatalf("confirm: %+v %v", f, err)
	}
	d, err := rpc.Call[rpc.DownloadURLResponse](ctx, nb.Conn, rpc.StorageDownloadURL, rpc.FileRequest{Caller: caller, FileID: u.FileID})
	if err != nil {
		t.Fatal(err)
	}
	resp, err = http.Get(d.DownloadURL)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Equal(got, body) {
		t.Fatalf("download: %d %q", resp.StatusCode, got)
	}
}

// TestDownloadOrigin: the origin of each provider's signed download links,
// from the configuration alone.
func TestDownloadOrigin(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		env  map[string]string
		want string
	}{
		{"aws", map[string]string{"STORAGE_PROVIDER": "s3", "AWS_REGION": "eu-central-1", "S3_BUCKET_NAME": "odavl-sync-files",
			"AWS_ACCESS_KEY_ID": "AKIAEXAMPLE", "AWS_SECRET_ACCESS_KEY": "secret"}, "https://odavl-sync-files.s3.eu-central-1.amazonaws.com"},
		{"s3 path style", map[string]string{"STORAGE_PROVIDER": "s3", "S3_BUCKET_NAME": "b", "S3_ENDPOINT": "http://127.0.0.1:7070",
			"S3_FORCE_PATH_STYLE": "true", "AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s"}, "http://127.0.0.1:7070"},
		{"azure", map[string]string{"AZURE_STORAGE_ACCOUNT_NAME": "acct", "AZURE_STORAGE_ACCOUNT_KEY": "a2V5"}, "https://acct.blob.core.windows.net"},
		{"azurite", map[string]string{"AZURE_STORAGE_ACCOUNT_NAME": "devstoreaccount1", "AZURE_STORAGE_ACCOUNT_KEY": "a2V5",
			"AZURE_BLOB_ENDPOINT": "http://127.0.0.1:10000/devstoreaccount1"}, "http://127.0.0.1:10000"},
		{"local", map[string]string{"STORAGE_PUBLIC_URL": "http://files.example.com:8080/"}, "http://files.example.com:8080"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := storage.ConfigFromEnv(func(k string) string { return tc.env[k] })
			if err != nil {
				t.Fatal(err)
			}
			got, err := cfg.DownloadOrigin(context.Background())
			if err != nil || got != tc.want {
				t.Errorf("DownloadOrigin = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}
