package jobs_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/odavl/sync/libs/jobs"
)

// sources calls f with every non-test Go file under the given directories of
// the repository (relative to its root).
func sources(t *testing.T, dirs []string, f func(path string, src []byte)) {
	t.Helper()
	for _, dir := range dirs {
		root := filepath.Join("..", "..", dir)
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && (d.Name() == "testdata" || d.Name() == "node_modules") {
				return filepath.SkipDir
			}
			if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return nil
			}
			src, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			f(filepath.ToSlash(path), src)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// No function of the jobs service is longer than 80 lines: a maintainer
// reads any of them on one screen.
func TestNoFunctionOver80Lines(t *testing.T) {
	var files int
	sources(t, []string{"services/jobs"}, func(path string, src []byte) {
		files++
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, path, src, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			if fd, ok := d.(*ast.FuncDecl); ok && fd.Body != nil {
				if n := fset.Position(fd.End()).Line - fset.Position(fd.Pos()).Line + 1; n > 80 {
					t.Errorf("%s: %s is %d lines long", fset.Position(fd.Pos()), fd.Name.Name, n)
				}
			}
		}
	})
	if files < 20 {
		t.Fatalf("read only %d files of the jobs service", files)
	}
}

// A JetStream delivery is acknowledged, refused, ended or kept alive only by
// the queue's executor and libs/bus, and the jobs' KV bucket is reached only
// through nats.go's KeyValue API, never by its raw $KV subjects.
func TestAcksAndKVOnlyThroughTheirOwners(t *testing.T) {
	ack := regexp.MustCompile(`\.(Ack|Nak|NakWithDelay|Term|TermWithReason|InProgress|DoubleAck)\(`)
	kv := regexp.MustCompile(`\$KV\.`)
	var files int
	sources(t, []string{"services", "libs", "cmd"}, func(path string, src []byte) {
		files++
		owner := strings.HasPrefix(path, "../../libs/bus/") || path == "../../services/jobs/internal/queue/executor.go"
		for i, line := range strings.Split(string(src), "\n") {
			if ack.MatchString(line) && !owner {
				t.Errorf("%s:%d acknowledges a delivery outside the executor and libs/bus: %s", path, i+1, strings.TrimSpace(line))
			}
			if kv.MatchString(line) {
				t.Errorf("%s:%d names a raw $KV subject: %s", path, i+1, strings.TrimSpace(line))
			}
		}
	})
	if files < 100 {
		t.Fatalf("read only %d files", files)
	}
}

// The job vocabulary (statuses and types) is spelled only in libs/jobs:
// every other Go file of the services, libs and commands names its
// constants. (The stdlib-only client keeps a copy of its own, checked equal
// by its test.)
func TestJobVocabularyHasOneHome(t *testing.T) {
	words := map[string]bool{jobs.Cleared: true}
	for _, w := range append(append([]string{}, jobs.Statuses...), jobs.Types...) {
		words[w] = true
	}
	var files int
	sources(t, []string{"services", "libs", "cmd"}, func(path string, src []byte) {
		if strings.HasPrefix(path, "../../libs/jobs/") {
			return
		}
		files++
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, path, src, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if lit, ok := n.(*ast.BasicLit); ok && lit.Kind == token.STRING {
				if v, err := strconv.Unquote(lit.Value); err == nil && words[v] {
					t.Errorf("%s: the job vocabulary's %q spelled outside libs/jobs", fset.Position(lit.Pos()), v)
				}
			}
			return true
		})
	})
	if files < 100 {
		t.Fatalf("read only %d files", files)
	}
}
