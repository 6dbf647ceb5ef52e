package ingest_test

import (
	"testing"

	"github.com/odavl/sync/services/ingest"
)

func TestOrigin(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"https://shots.s3.eu-west-1.amazonaws.com", "https://shots.s3.eu-west-1.amazonaws.com"},
		{"http://127.0.0.1:7070/", "http://127.0.0.1:7070"},
		{"HTTPS://Acct.Blob.Core.Windows.Net", "https://acct.blob.core.windows.net"},
		{"https://*.s3.amazonaws.com", ""},
		{"https://acct.blob.core.windows.net/container", ""},
		{"ftp://example.com", ""},
		{"example.com", ""},
		{"https://example.com; script-src *", ""},
		{"https://user@example.com", ""},
		{"https://example.com/?x=1", ""},
	} {
		t.Run(tc.in, func(t *testing.T) {
			t.Parallel()
			got, err := ingest.Origin(tc.in)
			if tc.want == "" {
				if err == nil {
					t.Errorf("Origin(%q) = %q, want an error", tc.in, got)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("Origin(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
			}
		})
	}
}

func TestConfigRefusesAWildcardBlobOrigin(t *testing.T) {
	t.Parallel()
	env := map[string]string{"DASHBOARD_BLOB_ORIGIN": "https://*.blob.core.windows.net"}
	if _, err := ingest.ConfigFromEnv(func(k string) string { return env[k] }); err == nil {
		t.Error("a wildcard DASHBOARD_BLOB_ORIGIN was accepted")
	}
	env["DASHBOARD_BLOB_ORIGIN"] = "https://acct.blob.core.windows.net/"
	c, err := ingest.ConfigFromEnv(func(k string) string { return env[k] })
	if err != nil || c.BlobOrigin != "https://acct.blob.core.windows.net" {
		t.Errorf("config %q, %v", c.BlobOrigin, err)
	}
}
