package main

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/odavl/sync/libs/embedded"
)

// While the store is away, uploads are accepted (the gateway knows the key,
// JetStream holds the upload); once it is back, every one lands and every
// job completes. The gateway used to answer 500 after the key cache's five
// seconds, and recovery took up to minutes with jobs left DELAYED.
func TestUploadsAreAcceptedThroughAStoreOutageAndAllLand(t *testing.T) {
	st := startTestStore(t)
	s := startServe(t, map[string]string{"MONGO_URI": st.URI, "KEY_CACHE_TTL": "200ms", "RATE_LIMIT_RPS": "0"})
	c := s.Cred
	total := func() int {
		var l struct{ Total int }
		r := s.Do(http.MethodGet, "/api/v1/sync/insight?limit=1", nil)
		if r.Status != http.StatusOK {
			return -1
		}
		r.JSON(t, &l)
		return l.Total
	}
	n := 0
	upload := func() {
		t.Helper()
		r := s.Do(http.MethodPost, "/api/v1/sync/insight", insightBody(c.OrganizationID, c.ProjectID, n))
		if r.Status != http.StatusAccepted {
			t.Fatalf("upload %d: %d %s", n, r.Status, r.Body)
		}
		n++
	}
	for range 20 {
		upload()
	}
	eventually(t, "the first uploads stored", func() bool { return total() == n })

	st.Stop()
	// Uploads at about 40/s.
	for end := time.Now().Add(outageFor()); time.Now().Before(end); {
		upload()
		time.Sleep(25 * time.Millisecond)
	}
	if r := s.Do(http.MethodGet, "/healthz", nil); r.Status != http.StatusOK {
		t.Errorf("/healthz during the outage: %d %s", r.Status, r.Body)
	}

	st.Start()
	start := time.Now()
	eventuallyWithin(t, 60*time.Second, fmt.Sprintf("all %d uploads stored after the outage", n), func() bool { return total() == n })
	t.Logf("%d uploads, the last %d during the outage: all stored %v after the store came back", n, n-20, time.Since(start).Round(time.Millisecond))
	eventuallyWithin(t, 30*time.Second, "every job completed", func() bool {
		var l struct{ Total int }
		r := s.Do(http.MethodGet, "/api/v1/sync/jobs?status=COMPLETED&limit=1", nil)
		r.JSON(t, &l)
		return l.Total == n
	})
}

// outageFor is how long the store stays away: 8 s (many key-cache lifetimes,
// past the first retry backoffs), or TEST_OUTAGE (70s drained ~2,000 uploads
// in 4.3 s once the store was back).
func outageFor() time.Duration {
	if d, err := time.ParseDuration(os.Getenv("TEST_OUTAGE")); err == nil {
		return d
	}
	return 8 * time.Second
}

// testStore is a store a test stops and starts again on the same data and
// address, as an outage would; it is stopped at the end of the test.
type testStore struct {
	*embedded.Store
	t         testing.TB
	dir, addr string
	running   bool
}

// startTestStore starts a store on a new data directory and a free address.
func startTestStore(t testing.TB) *testStore {
	t.Helper()
	s := &testStore{t: t, dir: t.TempDir(), addr: freeAddr(t)}
	s.Start()
	t.Cleanup(func() {
		if s.running {
			s.Store.Stop()
		}
	})
	return s
}

// Start starts the store (again).
func (s *testStore) Start() {
	s.t.Helper()
	st, err := embedded.StartStore(s.dir, s.addr, slog.New(slog.NewTextHandler(io.Discard, nil)), false)
	if err != nil {
		s.t.Fatal(err)
	}
	s.Store, s.running = st, true
}

// Stop stops the store.
func (s *testStore) Stop() {
	s.Store.Stop()
	s.running = false
}
