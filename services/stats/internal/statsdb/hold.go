package statsdb

import (
	"context"
	"fmt"
	"sync"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/odavl/sync/services/stats/internal/tally"
)

// DeferredCollection holds the changes of organizations whose counting is
// held by a rebuild of their own (see Store.RebuildOrganization).
const DeferredCollection = "stats_deferred"

// deferred is a change set aside while its organization is rebuilt: it is
// counted, through the ledger as any change, once the rebuild has finished.
type deferred struct {
	ID             string           `bson:"_id"` // the change's id
	OrganizationID string           `bson:"org"`
	ProjectID      string           `bson:"project"`
	Day            string           `bson:"day"`
	Inc            map[string]int64 `bson:"inc"`
}

// orgGate holds the counting of single organizations while they are
// rebuilt. A change of a held organization is not waited for (its
// consumer's workers and pending acknowledgements are shared with every
// other organization): it is written to DeferredCollection and counted
// after the rebuild.
type orgGate struct {
	mu   sync.Mutex
	cond *sync.Cond
	// held are the organizations being rebuilt, or whose rebuild must be finished.
	held map[string]bool
	// counting and deferring are the Apply calls in progress per organization.
	counting, deferring map[string]int
}

func newOrgGate() *orgGate {
	g := &orgGate{held: map[string]bool{}, counting: map[string]int{}, deferring: map[string]int{}}
	g.cond = sync.NewCond(&g.mu)
	return g
}

// enter registers an Apply for org and reports whether the organization is
// held (the change is to be deferred). Call leave with the same answer.
func (g *orgGate) enter(org string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.held[org] {
		g.deferring[org]++
		return true
	}
	g.counting[org]++
	return false
}

func (g *orgGate) leave(org string, held bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	m := g.counting
	if held {
		m = g.deferring
	}
	if m[org]--; m[org] == 0 {
		delete(m, org)
		g.cond.Broadcast()
	}
}

// hold holds org's counting and waits until none of its changes is being counted.
func (g *orgGate) hold(org string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.held[org] = true
	for g.counting[org] > 0 {
		g.cond.Wait()
	}
}

// release lets org's changes be counted again and waits until the changes
// being deferred are written, so that a drain after it finds them all.
func (g *orgGate) release(org string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.held, org)
	for g.deferring[org] > 0 {
		g.cond.Wait()
	}
}

// releaseAll lets every organization's changes be counted again (a
// rebuild of everything holds Apply: none is being deferred).
func (g *orgGate) releaseAll() {
	g.mu.Lock()
	defer g.mu.Unlock()
	clear(g.held)
}

func (g *orgGate) isHeld(org string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.held[org]
}

// Held reports whether org's counting is held by a rebuild of its own.
func (s *Store) Held(org string) bool { return s.gate.isHeld(org) }

// deferChange sets c aside until its organization's rebuild has finished
// (idempotent: a redelivered change is there once).
func (s *Store) deferChange(ctx context.Context, c tally.Change) error {
	_, err := s.deferred.InsertOne(ctx, deferred{ID: c.ID, OrganizationID: c.OrganizationID, ProjectID: c.ProjectID, Day: c.Day, Inc: c.Inc})
	if err != nil && !mongo.IsDuplicateKeyError(err) {
		return fmt.Errorf("deferring change %s: %w", c.ID, err)
	}
	return nil
}

// drainWorkers is how many deferred changes are counted at once (a
// project's are applied together, see Apply).
const drainWorkers = 64

// Drain counts the changes deferred by rebuilds of single organizations
// whose counting is no longer held, each once (through the ledger), and
// removes them. It is safe to repeat after any failure.
func (s *Store) Drain(ctx context.Context) (int, error) {
	// No organization is held while its changes are drained.
	s.rebuildMu.Lock()
	defer s.rebuildMu.Unlock()
	cur, err := s.deferred.Find(ctx, bson.D{})
	if err != nil {
		return 0, fmt.Errorf("reading deferred changes: %w", err)
	}
	var ds []deferred
	if err := cur.All(ctx, &ds); err != nil {
		return 0, fmt.Errorf("reading deferred changes: %w", err)
	}
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
		n        int
	)
	sem := make(chan struct{}, drainWorkers)
	for _, d := range ds {
		if s.gate.isHeld(d.OrganizationID) {
			continue
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			c := tally.Change{ID: d.ID, OrganizationID: d.OrganizationID, ProjectID: d.ProjectID, Day: d.Day, Inc: d.Inc}
			err := s.Apply(ctx, c, nil)
			if err == nil {
				if _, derr := s.deferred.DeleteOne(ctx, bson.D{{Key: "_id", Value: d.ID}}); derr != nil {
					err = fmt.Errorf("removing deferred change %s: %w", d.ID, derr)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil && firstErr == nil {
				firstErr = err
			}
			if err == nil {
				n++
			}
		}()
	}
	wg.Wait()
	return n, firstErr
}
