package main

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/odavl/sync/libs/events"
	"github.com/odavl/sync/libs/mongotest"
	"github.com/odavl/sync/libs/rpc"
	"github.com/odavl/sync/libs/standalone"
	"github.com/odavl/sync/services/ingest"
	"github.com/odavl/sync/services/jobs"
	"github.com/odavl/sync/services/stats"
	"github.com/odavl/sync/services/storage"
)

// components are the workloads of the render, each with its pod label.
var components = []string{"ingest", "jobs", "storage", "stats", "nats"}

// checkDisruptionAndPolicies: every component has a PodDisruptionBudget
// that lets a drain proceed yet keeps the rest serving, and a NetworkPolicy
// over its pods; only the services reach the NATS client port.
func checkDisruptionAndPolicies(t *testing.T, byKind map[string]map[string]k8sObject) {
	t.Helper()
	for _, c := range components {
		pdb, ok := byKind["PodDisruptionBudget"][c]
		if !ok {
			t.Errorf("%s: no PodDisruptionBudget", c)
		} else {
			if got := pdb.str("spec", "selector", "matchLabels", "app.kubernetes.io/name"); got != c {
				t.Errorf("%s: PodDisruptionBudget selects %q", c, got)
			}
			if mu := pdb.num("spec", "maxUnavailable"); mu != 1 {
				t.Errorf("%s: PodDisruptionBudget maxUnavailable %d, want 1 (one pod at a time, a single replica still drains)", c, mu)
			}
		}
		np, ok := byKind["NetworkPolicy"][c]
		if !ok {
			t.Errorf("%s: no NetworkPolicy", c)
			continue
		}
		if got := np.str("spec", "podSelector", "matchLabels", "app.kubernetes.io/name"); got != c {
			t.Errorf("%s: NetworkPolicy selects %q", c, got)
		}
		if types := np.list("spec", "policyTypes"); !slices.Contains(types, any("Ingress")) {
			t.Errorf("%s: NetworkPolicy does not restrict ingress", c)
		}
	}
	// Who may open a client connection to NATS.
	for _, rule := range byKind["NetworkPolicy"]["nats"].list("spec", "ingress") {
		r := k8sObject(rule.(map[string]any))
		for _, p := range r.list("ports") {
			if k8sObject(p.(map[string]any)).get("port") != "client" {
				continue
			}
			from := r.list("from")
			if len(from) != 1 {
				t.Fatalf("the NATS client port is open to %v, want the four services only", from)
			}
			sel := k8sObject(from[0].(map[string]any))
			exprs := sel.list("podSelector", "matchExpressions")
			if len(exprs) != 1 {
				t.Fatalf("the NATS client port's selector %v, want one expression naming the services", sel)
			}
			var got []string
			for _, v := range k8sObject(exprs[0].(map[string]any)).list("values") {
				got = append(got, v.(string))
			}
			slices.Sort(got)
			if want := []string{"ingest", "jobs", "stats", "storage"}; !slices.Equal(got, want) {
				t.Errorf("the NATS client port admits %v, want %v", got, want)
			}
		}
	}
}

// envOf returns a container's env entries by name.
func envOf(c k8sObject) map[string]k8sObject {
	out := map[string]k8sObject{}
	for _, e := range c.list("env") {
		m := k8sObject(e.(map[string]any))
		out[m.str("name")] = m
	}
	return out
}

// checkNATSServer: the image is the nats-server the tests embed, and
// JetStream's file store limit, read by the real config parser, fits the
// volume with room for raft logs and snapshots.
func checkNATSServer(t *testing.T, ns k8sObject, natsConf string) {
	t.Helper()
	c := k8sObject(ns.list("spec", "template", "spec", "containers")[0].(map[string]any))
	if img, want := c.str("image"), "nats:"+server.VERSION+"-alpine"; img != want {
		t.Errorf("NATS image %q, want %q: the nats-server version the tests run (go.mod)", img, want)
	}
	setNATSEnv(t, "120s", envOf(c)["NATS_MAX_FILE_STORE"].str("value"))
	path := filepath.Join(t.TempDir(), "nats.conf")
	if err := os.WriteFile(path, []byte(natsConf), 0o600); err != nil {
		t.Fatal(err)
	}
	o, err := server.ProcessConfigFile(path)
	if err != nil {
		t.Fatalf("the rendered nats.conf: %v", err)
	}
	vol := quantity(t, k8sObject(ns.list("spec", "volumeClaimTemplates")[0].(map[string]any)).str("spec", "resources", "requests", "storage"))
	if o.JetStreamMaxStore <= 0 || float64(o.JetStreamMaxStore) > 0.9*float64(vol) || float64(o.JetStreamMaxStore) < 0.5*float64(vol) {
		t.Errorf("max_file_store %d bytes on a %d-byte volume, want 50-90%% of it (JetStream refuses writes at its limit, not the disk)", o.JetStreamMaxStore, vol)
	}
}

// setNATSEnv gives nats.conf the environment the StatefulSet gives the pods
// (nats-1; every user's password is the user's name plus "-pw").
func setNATSEnv(t *testing.T, syncInterval, maxFileStore string) {
	t.Helper()
	t.Setenv("POD_NAME", "nats-1")
	t.Setenv("NATS_SYNC_INTERVAL", syncInterval)
	t.Setenv("NATS_MAX_FILE_STORE", maxFileStore)
	for _, u := range []string{"ingest", "jobs", "storage", "stats", "admin"} {
		t.Setenv("NATS_"+strings.ToUpper(u)+"_PASSWORD", u+"-pw")
	}
}

// quantity parses a Kubernetes storage quantity in Mi, Gi or Ti.
func quantity(t *testing.T, q string) int64 {
	t.Helper()
	for suffix, mult := range map[string]int64{"Mi": 1 << 20, "Gi": 1 << 30, "Ti": 1 << 40} {
		if n, ok := strings.CutSuffix(q, suffix); ok {
			v, err := strconv.ParseInt(n, 10, 64)
			if err != nil {
				t.Fatalf("volume size %q: %v", q, err)
			}
			return v * mult
		}
	}
	t.Fatalf("volume size %q: not in Mi, Gi or Ti", q)
	return 0
}

// checkNATSUsers: each service connects as its own NATS user with the
// password the NATS pods read for that user, from one Secret.
func checkNATSUsers(t *testing.T, byKind map[string]map[string]k8sObject, ns k8sObject, overlay string) {
	t.Helper()
	natsEnv := envOf(k8sObject(ns.list("spec", "template", "spec", "containers")[0].(map[string]any)))
	for _, svc := range components[:4] {
		d := byKind["Deployment"][svc]
		env := envOf(k8sObject(d.list("spec", "template", "spec", "containers")[0].(map[string]any)))
		if u := env["NATS_USER"].str("value"); u != svc {
			t.Errorf("%s: NATS_USER %q, want its own user %s", svc, u, svc)
		}
		ref := env["NATS_PASSWORD"]
		name, key := ref.str("valueFrom", "secretKeyRef", "name"), ref.str("valueFrom", "secretKeyRef", "key")
		server := natsEnv["NATS_"+strings.ToUpper(svc)+"_PASSWORD"]
		sname, skey := server.str("valueFrom", "secretKeyRef", "name"), server.str("valueFrom", "secretKeyRef", "key")
		if !strings.HasPrefix(name, "nats-users") || key != svc || name != sname || key != skey {
			t.Errorf("%s: NATS_PASSWORD from %s/%s, NATS reads its password from %s/%s: want the same key %s of nats-users", svc, name, key, sname, skey, svc)
		}
		if overlay == "dev" {
			if sec, ok := byKind["Secret"][name]; !ok || sec.get("data", key) == nil {
				t.Errorf("%s: the dev overlay's Secret %s has no key %s", svc, name, key)
			}
		}
	}
}

// startClusterConfigServer runs a real nats-server from the cluster's
// nats.conf (users and permissions as deployed), alone: on a free loopback
// port, without routes, JetStream in a temporary directory.
func startClusterConfigServer(t *testing.T) *server.Server {
	t.Helper()
	setNATSEnv(t, "120s", "1GB")
	o, err := server.ProcessConfigFile(filepath.Join(repoRoot(t), "deploy/k8s/components/nats-cluster/nats.conf"))
	if err != nil {
		t.Fatal(err)
	}
	o.Host, o.Port, o.HTTPPort, o.PidFile = "127.0.0.1", -1, 0, ""
	o.Cluster, o.Routes = server.ClusterOpts{}, nil
	o.StoreDir = t.TempDir()
	ns, err := server.NewServer(o)
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	t.Cleanup(ns.Shutdown)
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server from nats.conf not ready")
	}
	return ns
}

// connectAs connects as a nats.conf user and returns the connection and
// the permission errors the server reports to it.
func connectAs(t *testing.T, url, user string) (*nats.Conn, <-chan error) {
	t.Helper()
	errs := make(chan error, 16)
	nc, err := nats.Connect(url, nats.UserInfo(user, user+"-pw"),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { errs <- err }))
	if err != nil {
		t.Fatalf("connecting as %s: %v", user, err)
	}
	t.Cleanup(nc.Close)
	return nc, errs
}

// TestNATSPermissions runs the four services against a nats-server with the
// cluster's users and permissions: each starts with its own user, the
// gateway cannot publish a processed event (only jobs can), and no other
// service can answer the stats service's requests.
func TestNATSPermissions(t *testing.T) {
	ns := startClusterConfigServer(t)
	url := ns.ClientURL()
	if _, err := nats.Connect(url, nats.UserInfo("ingest", "wrong")); err == nil {
		t.Error("a wrong password was accepted")
	}

	// Each service starts (streams, consumers, buckets, micro endpoints)
	// with only its own permissions.
	mongoURI := mongotest.Start(t).URI
	for _, svc := range []struct {
		name  string
		build func(standalone.Deps) (standalone.Service, error)
	}{{"storage", storage.Standalone}, {"jobs", jobs.Standalone}, {"stats", stats.Standalone}, {"ingest", ingest.Standalone}} {
		env := map[string]string{
			"NATS_URL": url, "NATS_USER": svc.name, "NATS_PASSWORD": svc.name + "-pw", "MONGO_URI": mongoURI,
			"MONGO_DB": "perm_" + svc.name, "HEALTH_ADDR": "127.0.0.1:0", "HTTP_ADDR": "127.0.0.1:0", "METRICS_ADDR": "off",
			"STORAGE_ADDR": "127.0.0.1:0", "STORAGE_DATA_DIR": t.TempDir(), "JOBS_DATA_DIR": t.TempDir(),
		}
		health := runStandalone(t, svc.name, env, svc.build)
		eventuallyWithin(t, 30*time.Second, svc.name+" ready with its own NATS user", func() bool {
			code, _ := get(t, health+"/readyz")
			return code == http.StatusOK
		})
	}

	processed := events.ProcessedSubject("o1", "p1", events.Insight)
	ingestNC, ingestErrs := connectAs(t, url, "ingest")
	if err := ingestNC.Publish(processed, []byte("{}")); err != nil {
		t.Fatal(err)
	}
	_ = ingestNC.Flush()
	select {
	case err := <-ingestErrs:
		if !errors.Is(err, nats.ErrPermissionViolation) || !strings.Contains(err.Error(), processed) {
			t.Errorf("the gateway's publish of a processed event: %v, want a permissions violation", err)
		}
	case <-time.After(10 * time.Second):
		t.Error("the gateway published a processed event: nats.conf must deny it")
	}
	jobsNC, _ := connectAs(t, url, "jobs")
	js, err := jetstream.New(jobsNC)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(context.Background(), processed, []byte("{}")); err != nil {
		t.Errorf("jobs publishing a processed event: %v", err)
	}

	// A caller that gives up (the gateway, jobs calling storage, stats
	// calling jobs) cancels its request in every service that answers.
	var cancels []*nats.Subscription
	for _, svc := range []string{"jobs", "storage", "stats"} {
		nc, _ := connectAs(t, url, svc)
		sub, err := nc.SubscribeSync(rpc.CancelSubject)
		if err != nil {
			t.Fatal(err)
		}
		_ = nc.Flush()
		cancels = append(cancels, sub)
	}
	for _, caller := range []string{"ingest", "jobs", "stats"} {
		nc, _ := connectAs(t, url, caller)
		if err := nc.Publish(rpc.CancelSubject, []byte("req-"+caller)); err != nil {
			t.Fatal(err)
		}
		_ = nc.Flush()
		for _, sub := range cancels {
			if m, err := sub.NextMsg(5 * time.Second); err != nil || string(m.Data) != "req-"+caller {
				t.Errorf("%s's cancellation did not reach a service: %v", caller, err)
			}
		}
	}

	// Only stats may take the stats service's requests.
	storageNC, storageErrs := connectAs(t, url, "storage")
	if _, err := storageNC.Subscribe(rpc.StatsSummary, func(*nats.Msg) {}); err != nil {
		t.Fatal(err)
	}
	_ = storageNC.Flush()
	select {
	case err := <-storageErrs:
		if !errors.Is(err, nats.ErrPermissionViolation) {
			t.Errorf("storage subscribing to %s: %v, want a permissions violation", rpc.StatsSummary, err)
		}
	case <-time.After(10 * time.Second):
		t.Errorf("storage subscribed to %s: nats.conf must deny it", rpc.StatsSummary)
	}
}
