package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/odavl/sync/cmd/odavl-sync/internal/cluster"
	"github.com/odavl/sync/libs/events"
	"github.com/odavl/sync/libs/rpc"
)

var clusterBin struct {
	once sync.Once
	dir  string
	err  error
}

// startCluster builds the binaries (once per test binary, into a directory
// kept between runs so only changes relink) and starts a local cluster
// under the test's temporary directory, stopped at the end of the test.
func startCluster(t testing.TB, o cluster.Options) *cluster.Cluster {
	t.Helper()
	clusterBin.once.Do(func() {
		root, err := cluster.Root(".")
		if err != nil {
			clusterBin.err = err
			return
		}
		clusterBin.dir = cluster.BinDir(root)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		clusterBin.err = cluster.Build(ctx, root, clusterBin.dir)
	})
	if clusterBin.err != nil {
		t.Fatal(clusterBin.err)
	}
	dir := t.TempDir()
	if keep := os.Getenv("ODAVL_CLUSTER_KEEP"); keep != "" {
		// Data and logs stay there for a look after the test.
		dir = keep
	}
	o.Bin, o.Dir = clusterBin.dir, dir
	c, err := cluster.Start(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Stop()
		if t.Failed() {
			for _, p := range c.Procs() {
				b, _ := os.ReadFile(p.Log())
				if len(b) > 4000 {
					b = b[len(b)-4000:]
				}
				t.Logf("--- %s (last of %s):\n%s", p.Name, p.Log(), b)
			}
		}
	})
	t.Log(c.Summary())
	return c
}

// clusterClient is a CLI's view of the cluster: it posts to the gateways in
// turn, as a load balancer in front of them would send it, and retries an
// upload with its Idempotency-Key on a retryable answer (503, a refused or
// cut connection) on the next gateway, as the CLI does.
type clusterClient struct {
	gateways []string
	key      string
	hc       *http.Client
	next     atomic.Uint64

	unavailable atomic.Int64 // 503s seen
	connErrors  atomic.Int64 // refused or cut connections
	other       atomic.Int64 // any other unexpected answer
	mu          sync.Mutex
	firstOther  string
}

func newClusterClient(c *cluster.Cluster) *clusterClient {
	return &clusterClient{gateways: c.GatewayURLs(), key: c.AdminKey(), hc: &http.Client{Timeout: 20 * time.Second}}
}

// do sends one request to the next gateway; a transport error is status 0.
func (cc *clusterClient) do(method, path string, body any, hdr ...string) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(b)
	}
	base := cc.gateways[cc.next.Add(1)%uint64(len(cc.gateways))]
	req, err := http.NewRequest(method, base+path, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+cc.key)
	req.Header.Set("X-Organization-Id", "local")
	req.Header.Set("X-Project-Id", "default")
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := cc.hc.Do(req)
	if err != nil {
		cc.connErrors.Add(1)
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		cc.connErrors.Add(1)
		return 0, nil, err
	}
	if resp.StatusCode == http.StatusServiceUnavailable {
		cc.unavailable.Add(1)
	}
	return resp.StatusCode, b, nil
}

func (cc *clusterClient) unexpected(what string) {
	cc.other.Add(1)
	cc.mu.Lock()
	if cc.firstOther == "" {
		cc.firstOther = what
	}
	cc.mu.Unlock()
}

// upload posts an Insight upload until a gateway answers 202 (or the
// deadline passes) and returns its upload id.
func (cc *clusterClient) upload(n int, deadline time.Time) (string, bool) {
	key := fmt.Sprintf("cluster-upload-%d", n)
	for time.Now().Before(deadline) {
		st, b, err := cc.do(http.MethodPost, "/api/v1/sync/insight", insightBody("local", "default", n), "Idempotency-Key", key)
		switch {
		case err != nil || st == http.StatusServiceUnavailable || st == http.StatusBadGateway || st == http.StatusGatewayTimeout:
			time.Sleep(50 * time.Millisecond) // a CLI's retry delay
			continue
		case st == http.StatusAccepted:
			var r struct {
				UploadID string `json:"uploadId"`
			}
			if json.Unmarshal(b, &r) != nil || r.UploadID == "" {
				cc.unexpected(fmt.Sprintf("upload %d: 202 without an uploadId: %s", n, b))
				return "", false
			}
			return r.UploadID, true
		default:
			cc.unexpected(fmt.Sprintf("upload %d: %d %s", n, st, b))
			return "", false
		}
	}
	cc.unexpected(fmt.Sprintf("upload %d: no 202 before the deadline", n))
	return "", false
}

// get reads a JSON answer from any gateway, retrying retryable answers
// until the deadline.
func (cc *clusterClient) get(path string, v any) error {
	deadline := time.Now().Add(30 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		st, b, err := cc.do(http.MethodGet, path, nil)
		if err == nil && st == http.StatusOK {
			return json.Unmarshal(b, v)
		}
		last = fmt.Sprintf("%d %s %v", st, b, err)
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("GET %s: %s", path, last)
}

// load is the steady traffic of the kill test: uploaders posting Insight
// uploads and a submitter of EMAIL_SEND jobs, until stopped.
type load struct {
	cc       *clusterClient
	stop     chan struct{}
	wg       sync.WaitGroup
	nextN    atomic.Int64
	mu       sync.Mutex
	uploads  map[string]int // upload id → its number
	jobs     map[string]bool
	jobsLost atomic.Int64 // submissions with no answer: the job may or may not exist
}

func startLoad(cc *clusterClient, uploaders int) *load {
	l := &load{cc: cc, stop: make(chan struct{}), uploads: map[string]int{}, jobs: map[string]bool{}}
	for range uploaders {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for {
				select {
				case <-l.stop:
					return
				default:
				}
				n := int(l.nextN.Add(1))
				if id, ok := cc.upload(n, time.Now().Add(60*time.Second)); ok {
					l.mu.Lock()
					l.uploads[id] = n
					l.mu.Unlock()
				}
				time.Sleep(20 * time.Millisecond)
			}
		}()
	}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		for i := 0; ; i++ {
			select {
			case <-l.stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			// A submission has no idempotency key: one without an answer
			// is not retried (it may have been queued), only counted.
			st, b, err := cc.do(http.MethodPost, "/api/v1/jobs", map[string]any{"type": "EMAIL_SEND",
				"payload": map[string]any{"to": []string{fmt.Sprintf("dev%d@example.com", i)}, "subject": "cluster", "text": "hello"}})
			switch {
			case st == http.StatusAccepted:
				var j rpc.Job
				if json.Unmarshal(b, &j) != nil || j.ID == "" {
					cc.unexpected(fmt.Sprintf("job: 202 without an id: %s", b))
					continue
				}
				l.mu.Lock()
				l.jobs[j.ID] = true
				l.mu.Unlock()
			case err != nil || st == http.StatusServiceUnavailable || st == http.StatusGatewayTimeout:
				l.jobsLost.Add(1)
			default:
				cc.unexpected(fmt.Sprintf("job: %d %s", st, b))
			}
		}
	}()
	return l
}

func (l *load) accepted() (uploads, jobs int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.uploads), len(l.jobs)
}

func (l *load) end() { close(l.stop); l.wg.Wait() }

// progress waits until d more uploads and one more job are accepted: the
// system serves while a component is down (or back).
func (l *load) progress(t *testing.T, what string, d int) {
	t.Helper()
	u0, j0 := l.accepted()
	eventuallyWithin(t, 60*time.Second, fmt.Sprintf("%d more uploads and a job accepted %s", d, what), func() bool {
		u, j := l.accepted()
		return u >= u0+d && j > j0
	})
}

// TestClusterKill9 drives the local cluster (three clustered nats-server
// with R3 streams, the store, two gateways, two jobs and two storage
// instances, one stats instance, each its own process) under steady upload
// and job load and kills -9, in turn, the SYNC stream's leader, a gateway,
// a jobs instance and a storage instance, restarting each. Then every upload
// answered 202 is stored exactly once, every job completed exactly once,
// the stats aggregates are the hand-computed figures, the retryable 503s
// the clients saw are bounded, a second stats instance refuses to start and
// says why, and a PUBLIC file's link works through the gateways.
func TestClusterKill9(t *testing.T) {
	c := startCluster(t, cluster.Options{Env: map[string]string{
		"RATE_LIMIT_RPS": "0", "JOBS_ACK_WAIT": "5s", "STATS_ACK_WAIT": "5s", "KEY_CACHE_TTL": "1m",
	}})
	nc, err := c.Connect()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	allCurrent := func() bool {
		for _, s := range []string{events.StreamSync, events.StreamJobs, events.StreamStorage} {
			if cluster.StreamCurrent(ctx, js, s) != nil {
				return false
			}
		}
		return true
	}
	eventuallyWithin(t, 30*time.Second, "the streams at 3 current replicas", allCurrent)

	cc := newClusterClient(c)
	l := startLoad(cc, 4)
	l.progress(t, "at start", 20)

	// The SYNC stream's leader dies: the other two elect a new one.
	leader, err := c.StreamLeader(ctx, js, events.StreamSync)
	if err != nil {
		t.Fatal(err)
	}
	killed := []string{leader.Name}
	t.Logf("kill -9 %s (leader of %s)", leader.Name, events.StreamSync)
	if err := c.Kill(leader.Name); err != nil {
		t.Fatal(err)
	}
	l.progress(t, "without "+leader.Name, 20)
	if err := c.Restart(ctx, leader.Name); err != nil {
		t.Fatal(err)
	}
	eventuallyWithin(t, 60*time.Second, "every stream current again after "+leader.Name+" restarted", allCurrent)
	l.progress(t, "after "+leader.Name+" restarted", 10)

	// Then a gateway, a jobs instance and a storage instance.
	for _, name := range []string{"ingest-1", "jobs-1", "storage-1"} {
		t.Logf("kill -9 %s", name)
		if err := c.Kill(name); err != nil {
			t.Fatal(err)
		}
		killed = append(killed, name)
		l.progress(t, "without "+name, 20)
		if err := c.Restart(ctx, name); err != nil {
			t.Fatal(err)
		}
		l.progress(t, "after "+name+" restarted", 10)
	}
	l.end()
	nUploads, nJobs := l.accepted()
	t.Logf("killed %v; accepted %d uploads and %d jobs; clients saw %d 503s, %d refused or cut connections, %d job submissions without an answer",
		killed, nUploads, nJobs, cc.unavailable.Load(), cc.connErrors.Load(), l.jobsLost.Load())
	if n := cc.other.Load(); n > 0 {
		t.Errorf("%d unexpected answers, the first: %s", n, cc.firstOther)
	}
	// Retryable answers come only while a component is down or electing:
	// a bound well above what a kill costs, far below the requests sent.
	if n := cc.unavailable.Load(); n > 200 {
		t.Errorf("clients saw %d 503s over %d uploads; want at most 200", n, nUploads)
	}

	// Every upload answered 202 is stored exactly once.
	type listed struct {
		Items []struct {
			ID string `json:"id"`
		} `json:"items"`
		Total int `json:"total"`
	}
	var list listed
	eventuallyWithin(t, 90*time.Second, fmt.Sprintf("%d insight results listed", nUploads), func() bool {
		list = listed{}
		return cc.get("/api/v1/sync/insight?limit=1", &list) == nil && list.Total >= nUploads
	})
	seen := map[string]int{}
	for off := 0; off < list.Total; off += 100 {
		var page listed
		if err := cc.get(fmt.Sprintf("/api/v1/sync/insight?limit=100&offset=%d", off), &page); err != nil {
			t.Fatal(err)
		}
		for _, it := range page.Items {
			seen[it.ID]++
		}
	}
	if list.Total != nUploads || len(seen) != nUploads {
		t.Errorf("%d results listed (%d distinct); want the %d accepted uploads, each once", list.Total, len(seen), nUploads)
	}
	l.mu.Lock()
	for id := range l.uploads {
		if seen[id] != 1 {
			t.Errorf("upload %s (number %d) listed %d times; want once", id, l.uploads[id], seen[id])
		}
	}
	jobIDs := l.jobs
	l.mu.Unlock()

	// Every job completes, exactly once: each accepted one is COMPLETED,
	// and no other job exists but those whose submission went unanswered.
	var jobs rpc.ListJobsResponse
	var waitingIDs []string
	defer func() {
		if !t.Failed() {
			return
		}
		// Which accepted jobs the list lacks, and what became of them.
		listedIDs := map[string]bool{}
		for off := 0; off < 1000; off += 100 {
			var page rpc.ListJobsResponse
			if cc.get(fmt.Sprintf("/api/v1/sync/jobs?type=EMAIL_SEND&limit=100&offset=%d", off), &page) != nil || len(page.Items) == 0 {
				break
			}
			for _, j := range page.Items {
				listedIDs[j.ID] = true
			}
		}
		for id := range jobIDs {
			if !listedIDs[id] {
				t.Logf("job %s was accepted but is not listed", id)
				waitingIDs = append(waitingIDs, id)
			}
		}
		for _, id := range waitingIDs {
			dumpJob(t, c, js, cc, id)
		}
	}()
	waitFor(t, 90*time.Second, "every EMAIL_SEND job completed", func() (bool, string) {
		jobs = rpc.ListJobsResponse{}
		if err := cc.get("/api/v1/sync/jobs?type=EMAIL_SEND&limit=1", &jobs); err != nil {
			return false, err.Error()
		}
		var done rpc.ListJobsResponse
		err := cc.get("/api/v1/sync/jobs?type=EMAIL_SEND&status=COMPLETED&limit=1", &done)
		var waiting rpc.ListJobsResponse
		_ = cc.get("/api/v1/sync/jobs?type=EMAIL_SEND&status=WAITING&limit=5", &waiting)
		waitingIDs = waitingIDs[:0]
		for _, j := range waiting.Items {
			waitingIDs = append(waitingIDs, j.ID)
		}
		return err == nil && jobs.Total >= int64(nJobs) && done.Total == jobs.Total,
			fmt.Sprintf("%d jobs, %d completed, by status %v (%v); waiting: %+v", jobs.Total, done.Total, jobs.Stats.ByStatus, err, waiting.Items)
	})
	if extra := jobs.Total - int64(nJobs); extra < 0 || extra > l.jobsLost.Load() {
		t.Errorf("%d EMAIL_SEND jobs exist; want the %d accepted plus at most the %d unanswered submissions", jobs.Total, nJobs, l.jobsLost.Load())
	}
	statuses := map[string][]string{} // the statuses each job is listed with
	for off := int64(0); off < jobs.Total; off += 100 {
		var page rpc.ListJobsResponse
		if err := cc.get(fmt.Sprintf("/api/v1/sync/jobs?type=EMAIL_SEND&limit=100&offset=%d", off), &page); err != nil {
			t.Fatal(err)
		}
		for _, j := range page.Items {
			statuses[j.ID] = append(statuses[j.ID], j.Status)
		}
	}
	for id := range jobIDs {
		if st := statuses[id]; len(st) != 1 || st[0] != "COMPLETED" {
			t.Errorf("job %s is listed %v; want COMPLETED once", id, st)
			waitingIDs = append(waitingIDs, id)
		}
	}

	// The aggregates are the hand-computed figures: each upload has one
	// critical, one high and one medium issue; each job entered COMPLETED once.
	want := rpc.InsightFigures{Analyses: int64(nUploads), TotalIssues: 3 * int64(nUploads), WithCritical: int64(nUploads),
		IssuesBySeverity: rpc.SeverityTotals{Critical: int64(nUploads), High: int64(nUploads), Medium: int64(nUploads)}}
	waitFor(t, 90*time.Second, "the stats aggregates equal to the hand-computed figures", func() (bool, string) {
		var sum rpc.StatsSummaryResponse
		err := cc.get("/api/v1/stats/summary", &sum)
		return err == nil && sum.Insight == want && sum.Jobs.ByType["EMAIL_SEND"]["COMPLETED"] == jobs.Total,
			fmt.Sprintf("insight %+v, EMAIL_SEND jobs %v (%v); want %+v and %d COMPLETED", sum.Insight, sum.Jobs.ByType["EMAIL_SEND"], err, want, jobs.Total)
	})

	// One stats instance counts: a second refuses to start and says why.
	second := exec2ndStats(t, c)
	if !strings.Contains(second, "another stats instance") {
		t.Errorf("a second stats instance: %q; want a refusal saying another instance runs", second)
	}

	// A PUBLIC file's link works through the gateways (the storage
	// instances behind them, not a route only serve mounts).
	checkPublicLink(t, c)
}

// waitFor polls f every 50ms until it returns true or d passes, and then
// fails naming what f last saw.
func waitFor(t *testing.T, d time.Duration, what string, f func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		ok, saw := f()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s; last saw %s", d, what, saw)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// exec2ndStats runs one more stats process against the cluster and returns
// what it said when it exited.
func exec2ndStats(t *testing.T, c *cluster.Cluster) string {
	t.Helper()
	out, err := c.RunOnce(context.Background(), cluster.KindStats, 60*time.Second)
	var exit interface{ ExitCode() int }
	if !errors.As(err, &exit) || exit.ExitCode() == 0 {
		t.Errorf("a second stats instance: %v; want it to exit non-zero", err)
	}
	return out
}

// checkPublicLink uploads a PUBLIC file through one gateway and reads it
// without a key through its fileUrl and the permanent link on each gateway.
func checkPublicLink(t *testing.T, c *cluster.Cluster) {
	t.Helper()
	gws := c.GatewayURLs()
	s := &served{t: t, Cred: credentials{APIURL: gws[1], APIKey: c.AdminKey(), OrganizationID: "local", ProjectID: "default"}}
	body := []byte("public through the split deployment")
	u := upload(t, s, s.Cred.APIKey, "local", "default", map[string]any{"filename": "p.txt", "contentType": "text/plain", "size": len(body), "accessLevel": "PUBLIC"}, body)
	links := []string{u.FileURL}
	for _, gw := range gws {
		links = append(links, gw+"/public/files/"+u.FileID)
	}
	for _, link := range links {
		if st, _, got := blobDo(t, http.MethodGet, link, nil, nil); st != http.StatusOK || !bytes.Equal(got, body) {
			t.Errorf("PUBLIC file through %s: %d %q; want 200 and its bytes", link, st, got)
		}
	}
}

// dumpJob logs what the cluster holds of a job: its entries in the jobs
// bucket, its record in the store, its single-job read through a gateway
// (twice: either jobs instance may answer) and the log lines naming it.
func dumpJob(t *testing.T, c *cluster.Cluster, js jetstream.JetStream, cc *clusterClient, id string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if kv, err := js.KeyValue(ctx, "jobs-live"); err == nil {
		h, err := kv.History(ctx, id)
		t.Logf("job %s: bucket history (%v):", id, err)
		for _, e := range h {
			t.Logf("  rev %d %s %s: %s", e.Revision(), e.Operation(), e.Created().Format(time.RFC3339Nano), e.Value())
		}
	}
	if mc, err := mongo.Connect(options.Client().ApplyURI(c.MongoURI())); err == nil {
		var doc bson.M
		err := mc.Database("odavl_sync").Collection("jobs").FindOne(ctx, bson.M{"_id": id}).Decode(&doc)
		t.Logf("job %s: store record %v (%v)", id, doc, err)
		_ = mc.Disconnect(ctx)
	}
	for range 2 {
		var j rpc.Job
		err := cc.get("/api/v1/jobs/"+id, &j)
		t.Logf("job %s: read %+v (%v)", id, j, err)
	}
	for _, p := range c.Procs() {
		b, _ := os.ReadFile(p.Log())
		for _, line := range strings.Split(string(b), "\n") {
			if strings.Contains(line, id) {
				t.Logf("  %s: %s", p.Name, line)
			}
		}
	}
}
