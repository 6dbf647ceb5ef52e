// Package cluster runs ODAVL Sync on loopback the way a platform team runs
// it on Kubernetes: three nats-server processes clustered with JetStream
// (streams and buckets at three replicas), the MongoDB-wire store as a
// process of its own (`odavl-sync store`), and each service as its own
// process from services/<svc>/cmd/<svc>: two gateways, two jobs and two
// storage instances, and one stats instance (stats counts in exactly one
// instance: a second one refuses to start, see services/stats). Every
// process listens on its own free port; the harness starts them, waits until
// each is ready, kills and restarts any of them, and stops them all.
//
// `make cluster` runs it until interrupted; the cluster tests of
// cmd/odavl-sync drive it.
package cluster

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Replicas is the replica count of the cluster's streams and buckets.
const Replicas = 3

// Options configure a cluster.
type Options struct {
	// Bin holds the binaries Build made: nats-server, odavl-sync, ingest,
	// jobs, storage, stats.
	Bin string
	// Dir holds the cluster's data (JetStream stores, the store, blobs)
	// and each process's log, logs/<name>.log.
	Dir string
	// Gateways, Jobs and Storage are the instance counts of those services
	// (default 2 each).
	Gateways, Jobs, Storage int
	// Env adds variables to every service's environment (RATE_LIMIT_RPS, …).
	Env map[string]string
	// StartTimeout bounds each process's start (default 60s).
	StartTimeout time.Duration
}

// Kinds of process.
const (
	KindNATS    = "nats"
	KindStore   = "store"
	KindIngest  = "ingest"
	KindJobs    = "jobs"
	KindStorage = "storage"
	KindStats   = "stats"
)

// Proc is one process of the cluster.
type Proc struct {
	// Name is the kind and, for several of a kind, its number: nats-1,
	// store, ingest-2, stats.
	Name string
	Kind string
	// Addr is where it serves: the NATS client port, the store's MongoDB
	// port, a gateway's API, a storage instance's blob URLs; empty for
	// jobs and stats.
	Addr string
	// Health is its HTTP health address: a NATS server's monitoring port,
	// a service's HEALTH_ADDR (/healthz, /readyz, /metrics).
	Health string
	// ServerName is a NATS server's name in the cluster.
	ServerName string

	args []string
	env  []string
	log  string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// Running reports whether the process runs.
func (p *Proc) Running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// Log is the path of the process's log (all its starts, appended).
func (p *Proc) Log() string { return p.log }

// Cluster is a running local cluster.
type Cluster struct {
	opt      Options
	procs    []*Proc
	adminKey string
	apiURL   string
}

// Start starts every process, in order (NATS, store, stats, jobs, storage,
// gateways), each once the one before is ready, and returns once all are. On
// an error it stops what it started.
func Start(ctx context.Context, o Options) (*Cluster, error) {
	if o.Bin == "" || o.Dir == "" {
		return nil, errors.New("cluster: Options.Bin and Options.Dir are required")
	}
	for _, n := range []*int{&o.Gateways, &o.Jobs, &o.Storage} {
		if *n < 0 {
			return nil, errors.New("cluster: instance counts must not be negative")
		}
		if *n == 0 {
			*n = 2
		}
	}
	if o.StartTimeout <= 0 {
		o.StartTimeout = 60 * time.Second
	}
	for _, b := range Binaries {
		if _, err := os.Stat(filepath.Join(o.Bin, b)); err != nil {
			return nil, fmt.Errorf("cluster: binary %s missing in %s (run Build first): %w", b, o.Bin, err)
		}
	}
	if err := os.MkdirAll(filepath.Join(o.Dir, "logs"), 0o700); err != nil {
		return nil, err
	}
	c := &Cluster{opt: o, adminKey: "odavl_cluster_" + randomHex(16)}
	if err := c.plan(); err != nil {
		return nil, err
	}
	// The NATS servers start together: none is ready before a quorum
	// of them elects the JetStream meta leader.
	for _, p := range c.OfKind(KindNATS) {
		if err := p.start(); err != nil {
			c.Stop()
			return nil, err
		}
	}
	for _, p := range c.procs {
		var err error
		if p.Kind == KindNATS {
			err = c.ready(ctx, p)
		} else {
			err = c.Restart(ctx, p.Name)
		}
		if err != nil {
			c.Stop()
			return nil, err
		}
	}
	return c, nil
}

// plan picks every port and writes the NATS configurations.
func (c *Cluster) plan() error {
	o := c.opt
	ports, err := freePorts(9 + 1 + 2*o.Gateways + o.Jobs + 2*o.Storage + 1)
	if err != nil {
		return err
	}
	next := func() string { p := ports[0]; ports = ports[1:]; return p }
	lb := func(port string) string { return net.JoinHostPort("127.0.0.1", port) }

	// NATS: three servers with JetStream, clustered by their routes.
	var clientPorts, routePorts, urls []string
	for range 3 {
		clientPorts, routePorts = append(clientPorts, next()), append(routePorts, next())
	}
	monPorts := []string{}
	for _, p := range clientPorts {
		urls = append(urls, "nats://"+lb(p))
	}
	var routes []string
	for _, p := range routePorts {
		routes = append(routes, "nats-route://"+lb(p))
	}
	natsURL := strings.Join(urls, ",")
	for i := range 3 {
		monPorts = append(monPorts, next())
		name := fmt.Sprintf("nats-%d", i+1)
		dir := filepath.Join(o.Dir, name)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return err
		}
		conf := fmt.Sprintf(`server_name: %s
listen: 127.0.0.1:%s
http: 127.0.0.1:%s
max_payload: 8MB
jetstream { store_dir: %q }
cluster {
  name: odavl-local
  listen: 127.0.0.1:%s
  routes: [%s]
}
`, name, clientPorts[i], monPorts[i], filepath.Join(dir, "jetstream"), routePorts[i], strings.Join(routes, ", "))
		path := filepath.Join(dir, "nats.conf")
		if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
			return err
		}
		c.add(&Proc{Name: name, Kind: KindNATS, ServerName: name, Addr: lb(clientPorts[i]), Health: lb(monPorts[i]),
			args: []string{filepath.Join(o.Bin, "nats-server"), "-c", path}})
	}

	// The store.
	storeAddr := lb(next())
	c.add(&Proc{Name: "store", Kind: KindStore, Addr: storeAddr,
		args: []string{filepath.Join(o.Bin, "odavl-sync"), "store", "--data", filepath.Join(o.Dir, "store"), "--listen", storeAddr}})
	mongoURI := "mongodb://" + storeAddr + "/"

	// The services share NATS, the store, the replica count; the storage
	// instances share one blob directory (a shared volume on Kubernetes),
	// its signing key with it.
	gwAddrs := make([]string, o.Gateways)
	for i := range gwAddrs {
		gwAddrs[i] = lb(next())
	}
	c.apiURL = "http://" + gwAddrs[0]
	common := []string{
		"NATS_URL=" + natsURL, "MONGO_URI=" + mongoURI, "STREAM_REPLICAS=" + fmt.Sprint(Replicas), "LOG_LEVEL=info",
		"BOOTSTRAP_ADMIN_KEY=" + c.adminKey,
	}
	for k, v := range o.Env {
		common = append(common, k+"="+v)
	}
	svc := func(kind string, n, i int, addr string, extra ...string) {
		name := kind
		if n > 1 {
			name = fmt.Sprintf("%s-%d", kind, i+1)
		}
		health := lb(next())
		env := append(append([]string{"HEALTH_ADDR=" + health}, common...), extra...)
		c.add(&Proc{Name: name, Kind: kind, Addr: addr, Health: health, args: []string{filepath.Join(o.Bin, kind)}, env: env})
	}
	svc(KindStats, 1, 0, "")
	for i := range o.Jobs {
		svc(KindJobs, o.Jobs, i, "", "JOBS_DATA_DIR="+filepath.Join(o.Dir, fmt.Sprintf("jobs-%d", i+1)))
	}
	for i := range o.Storage {
		addr := lb(next())
		svc(KindStorage, o.Storage, i, addr, "STORAGE_PROVIDER=local", "STORAGE_ADDR="+addr, "STORAGE_PUBLIC_URL=http://"+addr,
			"STORAGE_DATA_DIR="+filepath.Join(o.Dir, "blobs"), "STORAGE_API_URL="+c.apiURL)
	}
	for i, addr := range gwAddrs {
		svc(KindIngest, o.Gateways, i, addr, "HTTP_ADDR="+addr, "METRICS_ADDR=off")
	}
	for _, p := range c.procs {
		p.log = filepath.Join(o.Dir, "logs", p.Name+".log")
	}
	return nil
}

func (c *Cluster) add(p *Proc) { c.procs = append(c.procs, p) }

// Procs are the cluster's processes in start order.
func (c *Cluster) Procs() []*Proc { return c.procs }

// Proc is the process named name, or nil.
func (c *Cluster) Proc(name string) *Proc {
	for _, p := range c.procs {
		if p.Name == name {
			return p
		}
	}
	return nil
}

// OfKind are the processes of a kind.
func (c *Cluster) OfKind(kind string) []*Proc {
	var ps []*Proc
	for _, p := range c.procs {
		if p.Kind == kind {
			ps = append(ps, p)
		}
	}
	return ps
}

// NATSURL is the servers' client URLs, comma-separated (NATS_URL).
func (c *Cluster) NATSURL() string {
	var urls []string
	for _, p := range c.OfKind(KindNATS) {
		urls = append(urls, "nats://"+p.Addr)
	}
	return strings.Join(urls, ",")
}

// MongoURI is the store's URI (MONGO_URI).
func (c *Cluster) MongoURI() string { return "mongodb://" + c.Proc("store").Addr + "/" }

// GatewayURLs are the gateways' API base URLs.
func (c *Cluster) GatewayURLs() []string {
	var urls []string
	for _, p := range c.OfKind(KindIngest) {
		urls = append(urls, "http://"+p.Addr)
	}
	return urls
}

// AdminKey is the operator key every gateway bootstraps (admin of every
// organization) for the organization local and its project default.
func (c *Cluster) AdminKey() string { return c.adminKey }

// Summary is one line saying where everything listens.
func (c *Cluster) Summary() string {
	var parts []string
	for _, p := range c.procs {
		s := p.Name
		switch {
		case p.Addr != "" && p.Health != "":
			s += " " + p.Addr + " (health " + p.Health + ")"
		case p.Addr != "":
			s += " " + p.Addr
		default:
			s += " (health " + p.Health + ")"
		}
		parts = append(parts, s)
	}
	return "cluster: " + strings.Join(parts, "; ") + "; logs " + filepath.Join(c.opt.Dir, "logs")
}

// Kill kills the process with SIGKILL, as a crashed node dies, and waits
// until it is gone.
func (c *Cluster) Kill(name string) error {
	p := c.Proc(name)
	if p == nil {
		return fmt.Errorf("cluster: no process %s", name)
	}
	return p.signal(syscall.SIGKILL, 10*time.Second)
}

// Restart starts the process again (or for the first time) with its ports,
// data and configuration, and waits until it is ready. A running process is
// stopped first with SIGTERM.
func (c *Cluster) Restart(ctx context.Context, name string) error {
	p := c.Proc(name)
	if p == nil {
		return fmt.Errorf("cluster: no process %s", name)
	}
	if p.Running() {
		if err := p.signal(syscall.SIGTERM, 30*time.Second); err != nil {
			return err
		}
	}
	if err := p.start(); err != nil {
		return err
	}
	return c.ready(ctx, p)
}

// ready waits until the process is ready, StartTimeout at most.
func (c *Cluster) ready(ctx context.Context, p *Proc) error {
	ctx, cancel := context.WithTimeout(ctx, c.opt.StartTimeout)
	defer cancel()
	if err := c.waitReady(ctx, p); err != nil {
		return fmt.Errorf("cluster: %s not ready: %w (log %s:\n%s)", p.Name, err, p.log, tail(p.log, 20))
	}
	return nil
}

// RunOnce runs one more process of a kind, configured as the cluster's
// first one but with a health port of its own, until it exits or d passes
// (then it is killed), and returns what it printed and how it ended: how a
// test sees what a second stats instance does.
func (c *Cluster) RunOnce(ctx context.Context, kind string, d time.Duration) (string, error) {
	ps := c.OfKind(kind)
	if len(ps) == 0 {
		return "", fmt.Errorf("cluster: no %s process", kind)
	}
	p := ps[0]
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	cmd := exec.CommandContext(ctx, p.args[0], p.args[1:]...)
	cmd.Env = append(append(os.Environ(), p.env...), "HEALTH_ADDR=127.0.0.1:0")
	setDeathSignal(cmd)
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		return string(out), fmt.Errorf("cluster: another %s still ran after %s: %w", kind, d, ctx.Err())
	}
	return string(out), err
}

// Stop stops every process, the services first, with SIGTERM, and kills
// those still running after 30 seconds.
func (c *Cluster) Stop() {
	for i := len(c.procs) - 1; i >= 0; i-- {
		if p := c.procs[i]; p.Running() {
			_ = p.signal(syscall.SIGTERM, 30*time.Second)
		}
	}
}

func (p *Proc) start() error {
	lf, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	fmt.Fprintf(lf, "=== start %s %s\n", p.Name, time.Now().UTC().Format(time.RFC3339Nano))
	cmd := exec.Command(p.args[0], p.args[1:]...)
	cmd.Env = append(os.Environ(), p.env...)
	cmd.Stdout, cmd.Stderr = lf, lf
	setDeathSignal(cmd)
	if err := cmd.Start(); err != nil {
		lf.Close()
		return fmt.Errorf("cluster: starting %s: %w", p.Name, err)
	}
	done := make(chan struct{})
	p.mu.Lock()
	p.cmd, p.done = cmd, done
	p.mu.Unlock()
	go func() {
		err := cmd.Wait()
		lf.Close()
		p.mu.Lock()
		p.err = err
		p.mu.Unlock()
		close(done)
	}()
	return nil
}

// signal sends sig and waits up to d for the process to exit, then kills it.
func (p *Proc) signal(sig syscall.Signal, d time.Duration) error {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return nil
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-done:
		return nil
	case <-time.After(d):
	}
	_ = cmd.Process.Kill()
	select {
	case <-done:
		return fmt.Errorf("cluster: %s did not stop within %s after %s: killed", p.Name, d, sig)
	case <-time.After(10 * time.Second):
		return fmt.Errorf("cluster: %s did not exit after SIGKILL", p.Name)
	}
}

// Exited is closed when the current run of the process ends; ExitErr is
// its exit error then.
func (p *Proc) Exited() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.done
}

// ExitErr is how the process's last run ended (nil while it runs or after a
// clean exit).
func (p *Proc) ExitErr() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// waitReady polls the process's readiness until ctx ends or it exits.
func (c *Cluster) waitReady(ctx context.Context, p *Proc) error {
	check := func() error { return httpOK(ctx, "http://"+p.Health+"/readyz") }
	switch p.Kind {
	case KindNATS:
		// JetStream is ready on this server: it is current with the meta
		// leader (a restarted server has caught up its streams' state).
		check = func() error { return httpOK(ctx, "http://"+p.Health+"/healthz?js-enabled-only=false") }
	case KindStore:
		check = func() error {
			conn, err := net.DialTimeout("tcp", p.Addr, time.Second)
			if err == nil {
				conn.Close()
			}
			return err
		}
	}
	var last error
	for {
		if last = check(); last == nil {
			return nil
		}
		select {
		case <-p.Exited():
			return fmt.Errorf("exited (%v) before ready: %w", p.ExitErr(), last)
		case <-ctx.Done():
			return fmt.Errorf("%w: %w", ctx.Err(), last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func httpOK(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %d %s", url, resp.StatusCode, strings.TrimSpace(string(b)))
	}
	return nil
}

// Connect connects to the cluster's NATS (a client of the test or the tool).
func (c *Cluster) Connect() (*nats.Conn, error) {
	return nats.Connect(c.NATSURL(), nats.Name("odavl-sync-cluster"), nats.MaxReconnects(-1))
}

// StreamLeader is the process that leads the stream's replicas.
func (c *Cluster) StreamLeader(ctx context.Context, js jetstream.JetStream, stream string) (*Proc, error) {
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", stream, err)
	}
	info := s.CachedInfo()
	if info.Cluster == nil || info.Cluster.Leader == "" {
		return nil, fmt.Errorf("stream %s has no leader", stream)
	}
	for _, p := range c.OfKind(KindNATS) {
		if p.ServerName == info.Cluster.Leader {
			return p, nil
		}
	}
	return nil, fmt.Errorf("stream %s: leader %q is none of the cluster's servers", stream, info.Cluster.Leader)
}

// StreamCurrent reports whether the stream has a leader and all its
// replicas are current (a restarted server has caught up).
func StreamCurrent(ctx context.Context, js jetstream.JetStream, stream string) error {
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return err
	}
	info := s.CachedInfo()
	if info.Config.Replicas != Replicas {
		return fmt.Errorf("stream %s has %d replicas, want %d", stream, info.Config.Replicas, Replicas)
	}
	if info.Cluster == nil || info.Cluster.Leader == "" {
		return fmt.Errorf("stream %s has no leader", stream)
	}
	if len(info.Cluster.Replicas) != Replicas-1 {
		return fmt.Errorf("stream %s: %d followers, want %d", stream, len(info.Cluster.Replicas), Replicas-1)
	}
	for _, r := range info.Cluster.Replicas {
		if !r.Current || r.Offline {
			return fmt.Errorf("stream %s: replica %s not current", stream, r.Name)
		}
	}
	return nil
}

// freePorts reserves n distinct free loopback ports (held open until all
// are picked, so none repeats).
func freePorts(n int) ([]string, error) {
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	var ports []string
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("cluster: finding a free port: %w", err)
		}
		lns = append(lns, ln)
		_, port, _ := net.SplitHostPort(ln.Addr().String())
		ports = append(ports, port)
	}
	return ports, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// tail is the last n lines of a file.
func tail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}
