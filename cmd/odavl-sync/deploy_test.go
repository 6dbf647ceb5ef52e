package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"gopkg.in/yaml.v3"

	"github.com/odavl/sync/services/storage"
)

// repoRoot is the repository root, two levels above this package.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// TestNATSClusterConfig loads the cluster's nats.conf with the real server's
// parser, as the pods do, with the environment the StatefulSet gives them.
func TestNATSClusterConfig(t *testing.T) {
	path := filepath.Join(repoRoot(t), "deploy/k8s/components/nats-cluster/nats.conf")
	for _, tc := range []struct {
		interval   string
		wantAlways bool
		wantEvery  time.Duration
	}{
		{"120s", false, 2 * time.Minute},
		// From a variable "2m" is a number (two million): the manifests
		// must give seconds.
		{"2m", false, 2_000_000 * time.Second},
		{"10s", false, 10 * time.Second},
		{"always", true, 0},
	} {
		t.Run(tc.interval, func(t *testing.T) {
			setNATSEnv(t, tc.interval, "8GB")
			o, err := server.ProcessConfigFile(path)
			if err != nil {
				t.Fatalf("nats.conf: %v", err)
			}
			if o.ServerName != "nats-1" {
				t.Errorf("server_name %q, want the pod name", o.ServerName)
			}
			if !o.JetStream || o.StoreDir != "/data/jetstream" {
				t.Errorf("jetstream %v store %q, want enabled on /data/jetstream", o.JetStream, o.StoreDir)
			}
			if o.Cluster.Name == "" || o.Cluster.Port != 6222 || len(o.Routes) != 3 {
				t.Errorf("cluster %q port %d with %d routes, want a named cluster on 6222 with 3 routes", o.Cluster.Name, o.Cluster.Port, len(o.Routes))
			}
			if o.SyncAlways != tc.wantAlways || (!tc.wantAlways && o.SyncInterval != tc.wantEvery) {
				t.Errorf("sync always %v interval %v, want %v %v", o.SyncAlways, o.SyncInterval, tc.wantAlways, tc.wantEvery)
			}
			if o.MaxPayload < 5<<20 {
				t.Errorf("max_payload %d is below the gateway's 4 MiB uploads plus envelope", o.MaxPayload)
			}
		})
	}
}

// kustomize renders dir with kustomize or kubectl kustomize.
func kustomize(t *testing.T, dir string) []byte {
	t.Helper()
	var cmd *exec.Cmd
	tools := filepath.Join(repoRoot(t), ".tools/bin/kustomize") // scripts/check-k8s.sh installs it there
	if _, err := os.Stat(tools); err == nil {
		cmd = exec.Command(tools, "build", dir)
	} else if p, err := exec.LookPath("kustomize"); err == nil {
		cmd = exec.Command(p, "build", dir)
	} else if p, err := exec.LookPath("kubectl"); err == nil {
		cmd = exec.Command(p, "kustomize", dir)
	} else {
		if os.Getenv("CI") != "" {
			t.Fatal("neither kustomize nor kubectl is installed: run scripts/check-k8s.sh (it installs kustomize)")
		}
		t.Skip("neither kustomize nor kubectl is installed: skipping the render of deploy/k8s")
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("rendering %s: %v\n%s", dir, err, stderr.String())
	}
	return out
}

type k8sObject map[string]any

func (o k8sObject) get(path ...string) any {
	var cur any = map[string]any(o)
	for _, p := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[p]
	}
	return cur
}

func (o k8sObject) str(path ...string) string { s, _ := o.get(path...).(string); return s }

func (o k8sObject) list(path ...string) []any { l, _ := o.get(path...).([]any); return l }

func (o k8sObject) num(path ...string) int { n, _ := o.get(path...).(int); return n }

func decodeAll(t *testing.T, b []byte) []k8sObject {
	t.Helper()
	var out []k8sObject
	dec := yaml.NewDecoder(bytes.NewReader(b))
	for {
		var v any // nested maps decode as map[string]any only into an any
		err := dec.Decode(&v)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("decoding the render: %v", err)
		}
		if o, ok := v.(map[string]any); ok {
			out = append(out, k8sObject(o))
		}
	}
}

// TestKustomizeOverlays renders both overlays and checks what a broken edit
// would break: every service deployed with its probes and a grace period
// longer than its shutdown, every config and secret it names present (or
// left to the platform on purpose), the NATS cluster of three, and the
// production settings.
func TestKustomizeOverlays(t *testing.T) {
	root := repoRoot(t)
	for _, overlay := range []string{"dev", "prod"} {
		t.Run(overlay, func(t *testing.T) {
			objs := decodeAll(t, kustomize(t, filepath.Join(root, "deploy/k8s/overlays", overlay)))
			byKind := map[string]map[string]k8sObject{}
			for _, o := range objs {
				k := o.str("kind")
				if byKind[k] == nil {
					byKind[k] = map[string]k8sObject{}
				}
				byKind[k][o.str("metadata", "name")] = o
			}
			// Names of generated objects carry a hash suffix.
			configs := map[string]k8sObject{}
			for name, o := range byKind["ConfigMap"] {
				configs[name] = o
			}
			external := map[string]bool{"odavl-sync-storage-secrets": true} // optional
			if overlay == "prod" {
				external["odavl-sync-secrets"] = true // from the platform's secret manager
			}

			for _, svc := range []string{"ingest", "jobs", "storage", "stats"} {
				d, ok := byKind["Deployment"][svc]
				if !ok {
					t.Errorf("no Deployment %s", svc)
					continue
				}
				if _, ok := byKind["Service"][svc]; !ok {
					t.Errorf("no Service %s", svc)
				}
				if g := d.num("spec", "template", "spec", "terminationGracePeriodSeconds"); g <= 15 {
					t.Errorf("%s: terminationGracePeriodSeconds %d, want more than the 15 s shutdown timeout", svc, g)
				}
				c := k8sObject(d.list("spec", "template", "spec", "containers")[0].(map[string]any))
				if got := c.str("readinessProbe", "httpGet", "path"); got != "/readyz" {
					t.Errorf("%s: readiness probe %q, want /readyz", svc, got)
				}
				if got := c.str("livenessProbe", "httpGet", "path"); got != "/healthz" {
					t.Errorf("%s: liveness probe %q, want /healthz", svc, got)
				}
				wantPort := map[bool]string{true: "http", false: "health"}[svc == "ingest"]
				if got := c.get("readinessProbe", "httpGet", "port"); got != wantPort {
					t.Errorf("%s: probes on port %v, want %s", svc, got, wantPort)
				}
				// stats refuses a second instance (a lease in NATS): one
				// replica, and a rollout that stops the old pod first.
				if svc == "stats" {
					if r := d.num("spec", "replicas"); r != 1 {
						t.Errorf("stats: %d replicas, want exactly 1 (a second instance refuses to start)", r)
					}
					if s := d.str("spec", "strategy", "type"); s != "Recreate" {
						t.Errorf("stats: strategy %q, want Recreate (a surge pod would find the lease held)", s)
					}
				}
				if overlay == "prod" {
					if r := d.num("spec", "replicas"); r < 2 && svc != "stats" {
						t.Errorf("%s: %d replicas in prod", svc, r)
					}
					if c.get("resources", "requests", "cpu") == nil || c.get("resources", "limits", "memory") == nil {
						t.Errorf("%s: no cpu request or memory limit in prod", svc)
					}
					if img := c.str("image"); !strings.Contains(img, ":") || strings.HasPrefix(img, "odavl-sync/") {
						t.Errorf("%s: prod image %q is not a pinned registry image", svc, img)
					}
				} else if img := c.str("image"); img != "odavl-sync/"+svc {
					t.Errorf("%s: dev image %q, want odavl-sync/%s (what the Tiltfile builds)", svc, img, svc)
				}
				for _, ef := range c.list("envFrom") {
					e := k8sObject(ef.(map[string]any))
					if name := e.str("configMapRef", "name"); name != "" {
						if _, ok := configs[name]; !ok {
							t.Errorf("%s: envFrom names ConfigMap %s, which the render does not have", svc, name)
						}
					}
					if name := e.str("secretRef", "name"); name != "" {
						if _, ok := byKind["Secret"][name]; !ok && !external[name] {
							t.Errorf("%s: envFrom names Secret %s, which the render does not have", svc, name)
						}
					}
				}
			}

			var cfg k8sObject
			for name, o := range configs {
				if strings.HasPrefix(name, "odavl-sync-config") {
					cfg = o
				}
			}
			if cfg == nil {
				t.Fatal("no odavl-sync-config ConfigMap")
			}
			want := map[string]string{"dev": "1", "prod": "3"}[overlay]
			if got := cfg.str("data", "STREAM_REPLICAS"); got != want {
				t.Errorf("STREAM_REPLICAS %q, want %s", got, want)
			}
			if got := cfg.str("data", "NATS_URL"); got != "nats://nats:4222" {
				t.Errorf("NATS_URL %q", got)
			}
			checkBlobOrigin(t, configs, cfg)

			ns, ok := byKind["StatefulSet"]["nats"]
			if !ok {
				t.Fatal("no NATS StatefulSet")
			}
			if r := ns.num("spec", "replicas"); r != 3 {
				t.Errorf("NATS replicas %d, want 3", r)
			}
			var interval string
			nc := k8sObject(ns.list("spec", "template", "spec", "containers")[0].(map[string]any))
			for _, e := range nc.list("env") {
				if m := e.(map[string]any); m["name"] == "NATS_SYNC_INTERVAL" {
					interval, _ = m["value"].(string)
				}
			}
			if wantI := map[string]string{"dev": "120s", "prod": "always"}[overlay]; interval != wantI {
				t.Errorf("NATS_SYNC_INTERVAL %q, want %q", interval, wantI)
			}
			var natsConf string
			for name, o := range configs {
				if strings.HasPrefix(name, "nats-config") {
					natsConf = o.str("data", "nats.conf")
				}
			}
			if !strings.Contains(natsConf, "jetstream") || !strings.Contains(natsConf, "nats-2.nats-headless:6222") {
				t.Errorf("the nats-config ConfigMap lacks the JetStream cluster config")
			}
			if _, ok := byKind["Service"]["nats-headless"]; !ok {
				t.Error("no headless Service for the NATS routes")
			}
			checkDisruptionAndPolicies(t, byKind)
			checkNATSServer(t, ns, natsConf)
			checkNATSUsers(t, byKind, ns, overlay)
		})
	}
}

// checkBlobOrigin: the gateway's DASHBOARD_BLOB_ORIGIN is the origin of the
// signed links the storage service's configuration gives (none for local
// storage, whose links are the API's own).
func checkBlobOrigin(t *testing.T, configs map[string]k8sObject, cfg k8sObject) {
	t.Helper()
	env := map[string]string{"AWS_ACCESS_KEY_ID": "from-the-secret", "AWS_SECRET_ACCESS_KEY": "from-the-secret",
		"AZURE_STORAGE_ACCOUNT_KEY": "ZnJvbS10aGUtc2VjcmV0"}
	for name, o := range configs {
		if strings.HasPrefix(name, "odavl-sync-storage") {
			for k, v := range o.get("data").(map[string]any) {
				env[k], _ = v.(string)
			}
		}
	}
	sc, err := storage.ConfigFromEnv(func(k string) string { return env[k] })
	if err != nil {
		t.Fatalf("the storage ConfigMap: %v", err)
	}
	want := ""
	if sc.Provider != storage.ProviderLocal {
		if want, err = sc.DownloadOrigin(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if got := cfg.str("data", "DASHBOARD_BLOB_ORIGIN"); got != want {
		t.Errorf("DASHBOARD_BLOB_ORIGIN %q, want %q (the %s storage's signed links)", got, want, sc.Provider)
	}
}
