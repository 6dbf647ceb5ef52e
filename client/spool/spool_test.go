package spool

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

func entry(n int) Entry {
	return Entry{Product: "insight", OrganizationID: "o", ProjectID: "p", IdempotencyKey: fmt.Sprintf("k%d", n), Body: json.RawMessage(fmt.Sprintf(`{"n":%d}`, n))}
}

func openAt(t *testing.T) (*Spool, *time.Time) {
	t.Helper()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s, err := Open(t.TempDir(), func() time.Time { now = now.Add(time.Millisecond); return now })
	if err != nil {
		t.Fatal(err)
	}
	return s, &now
}

func TestFlushOldestFirstEachOnceUnderConcurrency(t *testing.T) {
	s, _ := openAt(t)
	for i := range 20 {
		if _, err := s.Put(entry(i)); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	sent := map[string]int{}
	var order []string
	send := func(_ context.Context, it Item) (Outcome, string, error) {
		mu.Lock()
		defer mu.Unlock()
		sent[it.Entry.IdempotencyKey]++
		order = append(order, it.Entry.IdempotencyKey)
		return Delivered, "", nil
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := s.Flush(context.Background(), send); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if len(sent) != 20 {
		t.Fatalf("%d entries sent, want 20", len(sent))
	}
	for k, n := range sent {
		if n != 1 {
			t.Errorf("%s sent %d times", k, n)
		}
	}
	for i, k := range order {
		if k != fmt.Sprintf("k%d", i) {
			t.Fatalf("sent in order %v, want oldest first", order)
		}
	}
	if items, _, _ := s.List(); len(items) != 0 {
		t.Errorf("%d entries left", len(items))
	}
}

func TestFlushKeepsOrderWhenUnreachableAndSetsAside(t *testing.T) {
	s, _ := openAt(t)
	for i := range 4 {
		if _, err := s.Put(entry(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(s.Dir(), "00000000000000000000-x-00.json"), []byte("not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	rep, err := s.Flush(context.Background(), func(_ context.Context, it Item) (Outcome, string, error) {
		switch it.Entry.IdempotencyKey {
		case "k0":
			return Delivered, "", nil
		case "k1":
			return Rejected, "400 bad field", errors.New("rejected")
		}
		return Keep, "", errors.New("connection refused")
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Corrupt) != 1 || rep.Count(Delivered) != 1 || rep.Count(Rejected) != 1 || rep.Remaining != 2 {
		t.Fatalf("report %+v", rep)
	}
	items, bad, _ := s.List()
	if len(bad) != 0 || len(items) != 2 || items[0].Entry.IdempotencyKey != "k2" || items[1].Entry.IdempotencyKey != "k3" {
		t.Errorf("left %+v (unreadable %v), want k2, k3", items, bad)
	}
	corrupt, _ := s.SetAside("corrupt")
	rejected, _ := s.SetAside("rejected")
	if len(corrupt) != 1 || len(rejected) != 1 {
		t.Errorf("set aside: corrupt %v rejected %v", corrupt, rejected)
	}
	reason, err := os.ReadFile(rejected[0][:len(rejected[0])-len(".json")] + ".reason.txt")
	if err != nil || string(reason) != "400 bad field\n" {
		t.Errorf("rejection reason %q %v", reason, err)
	}
}

func TestPutRejectsIncompleteEntry(t *testing.T) {
	s, _ := openAt(t)
	if _, err := s.Put(Entry{Product: "insight", Body: json.RawMessage(`{}`)}); err == nil {
		t.Error("an entry without idempotency key was spooled")
	}
	if _, err := s.Put(Entry{Product: "insight", IdempotencyKey: "k", Body: json.RawMessage(`{`)}); err == nil {
		t.Error("an entry with a broken body was spooled")
	}
}

func TestPutOrdersEntriesWhenTheClockStandsStill(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s, err := Open(t.TempDir(), func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if _, err := s.Put(entry(i)); err != nil {
			t.Fatal(err)
		}
	}
	items, _, _ := s.List()
	for i, it := range items {
		if it.Entry.IdempotencyKey != fmt.Sprintf("k%d", i) {
			t.Fatalf("entry %d is %s: spooled order lost", i, it.Entry.IdempotencyKey)
		}
	}
}

func TestPutKeepsCopiesOfFiles(t *testing.T) {
	s, _ := openAt(t)
	src := filepath.Join(t.TempDir(), "shot.png")
	if err := os.WriteFile(src, []byte("png bytes"), 0o600); err != nil {
		t.Fatal(err)
	}
	e := entry(1)
	e.Files = []string{src}
	it, err := s.Put(e)
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(src) // the CI job's workspace is gone
	items, _, _ := s.List()
	if len(items) != 1 || len(items[0].Entry.Files) != 1 {
		t.Fatalf("listed %+v", items)
	}
	if b, err := os.ReadFile(items[0].Entry.Files[0]); err != nil || string(b) != "png bytes" {
		t.Fatalf("spooled copy: %q %v", b, err)
	}
	if _, err := s.Flush(context.Background(), func(context.Context, Item) (Outcome, string, error) { return Delivered, "", nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Dir(items[0].Entry.Files[0])); !os.IsNotExist(err) {
		t.Errorf("the files of delivered entry %s were kept: %v", it.Name, err)
	}
}
