// Package storagetest starts the real object stores the storage tests run
// against: versitygw (an S3 gateway that checks SigV4 signatures) and
// Azurite (the Azure Storage emulator). Each is started on a free loopback
// port for one test and stopped at its cleanup. When a tool is missing the
// test is skipped with the reason, except under CI (env CI set), where it
// fails: CI installs them with scripts/install-test-tools.sh.
package storagetest

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// AzuriteAccount and AzuriteKey are the emulator's well-known account.
const (
	AzuriteAccount = "devstoreaccount1"
	AzuriteKey     = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)

// S3Server is a running versitygw.
type S3Server struct {
	Endpoint  string
	AccessKey string
	SecretKey string
	Region    string
}

// AzureServer is a running Azurite blob service.
type AzureServer struct {
	Endpoint string // http://127.0.0.1:PORT/devstoreaccount1
	Account  string
	Key      string
}

// missing skips, or fails under CI.
func missing(tb testing.TB, what string) {
	tb.Helper()
	if os.Getenv("CI") != "" {
		tb.Fatalf("%s is missing; CI must install it (scripts/install-test-tools.sh)", what)
	}
	tb.Skipf("%s is missing: run make tools (scripts/install-test-tools.sh)", what)
}

// repoRoot is the directory holding go.work above the working directory.
func repoRoot() string {
	dir, _ := os.Getwd()
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.work")); err == nil {
			return d
		}
		if filepath.Dir(d) == d {
			return dir
		}
	}
}

func freePort(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func start(tb testing.TB, name, probe string, cmd *exec.Cmd) {
	tb.Helper()
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		tb.Fatalf("starting %s: %v", name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	tb.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-done:
			tb.Fatalf("%s exited before it answered:\n%s", name, out.String())
		default:
		}
		resp, err := http.Get(probe)
		if err == nil {
			resp.Body.Close()
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%s did not answer in 30s:\n%s", name, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// StartS3 starts versitygw over a new directory.
func StartS3(tb testing.TB) S3Server {
	tb.Helper()
	bin, err := exec.LookPath("versitygw")
	if err != nil {
		bin = filepath.Join(repoRoot(), ".tools", "bin", "versitygw")
		if _, err := os.Stat(bin); err != nil {
			missing(tb, "versitygw")
		}
	}
	addr := freePort(tb)
	s := S3Server{Endpoint: "http://" + addr, AccessKey: "odavltestaccess", SecretKey: "odavltestsecret0123456789", Region: "us-east-1"}
	cmd := exec.Command(bin, "--access", s.AccessKey, "--secret", s.SecretKey, "--region", s.Region, "--port", addr, "posix", tb.TempDir())
	start(tb, "versitygw", s.Endpoint, cmd)
	return s
}

// StartAzure starts Azurite's blob service in memory.
func StartAzure(tb testing.TB) AzureServer {
	tb.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		missing(tb, "node")
	}
	main := filepath.Join(repoRoot(), ".tools", "azurite", "node_modules", "azurite", "dist", "src", "blob", "main.js")
	if _, err := os.Stat(main); err != nil {
		missing(tb, "azurite ("+main+")")
	}
	addr := freePort(tb)
	host, port, _ := net.SplitHostPort(addr)
	cmd := exec.Command(node, main, "--blobHost", host, "--blobPort", port, "--inMemoryPersistence",
		"--skipApiVersionCheck", "--disableTelemetry", "--silent")
	s := AzureServer{Endpoint: fmt.Sprintf("http://%s/%s", addr, AzuriteAccount), Account: AzuriteAccount, Key: AzuriteKey}
	start(tb, "azurite", "http://"+addr+"/", cmd)
	return s
}
