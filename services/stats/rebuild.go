package stats

import (
	"context"
	"time"

	"github.com/odavl/sync/libs/events"
	"github.com/odavl/sync/libs/rpc"
	"github.com/odavl/sync/services/stats/internal/statsdb"
	"github.com/odavl/sync/services/stats/internal/tally"
)

func (s *Service) rebuildRequest(ctx context.Context, req rpc.StatsRebuildRequest) (rpc.StatsRebuildResponse, error) {
	scope := req.Scope
	switch scope {
	case "", rpc.ScopeAll:
		scope, req.OrganizationID = rpc.ScopeAll, ""
	case rpc.ScopeOrganization:
		if !events.ValidToken(req.OrganizationID) {
			return rpc.StatsRebuildResponse{}, &rpc.Error{Status: 400, Message: "invalid rebuild request",
				Fields: []rpc.FieldError{{Field: "organizationId", Message: "must be 1-64 letters, digits, '-' or '_'"}}}
		}
	default:
		return rpc.StatsRebuildResponse{}, &rpc.Error{Status: 400, Message: "invalid rebuild request",
			Fields: []rpc.FieldError{{Field: "scope", Message: "must be all or organization"}}}
	}
	start := s.now().UTC()
	res, err := s.rebuild(ctx, req.OrganizationID)
	if err != nil {
		return rpc.StatsRebuildResponse{}, err
	}
	return rpc.StatsRebuildResponse{Scope: scope, OrganizationID: req.OrganizationID, Generation: res.Generation,
		Results: res.Changes, Aggregates: res.Aggregates, StartedAt: start, FinishedAt: s.now().UTC()}, nil
}

// rebuild recomputes the aggregates of org, or of every organization when
// org is empty, from the result documents the jobs service exports, then
// counts the changes org's rebuild set aside.
func (s *Service) rebuild(ctx context.Context, org string) (statsdb.RebuildResult, error) {
	start := time.Now()
	res, err := s.rebuildOnce(ctx, org)
	if err != nil {
		unfinished := s.store.RebuildUnfinished() || org != "" && s.store.Held(org)
		s.log.Error("stats rebuild failed", "organization", org, "err", err, "countingHeld", unfinished)
		if unfinished {
			// Counting (org's, or every organization's) waits for the rebuild: keep trying in the background.
			s.finishInBackground(org)
		}
		return res, err
	}
	s.log.Info("stats rebuilt", "organization", org, "generation", res.Generation, "results", res.Changes, "aggregates", res.Aggregates, "took", time.Since(start))
	s.drain(ctx)
	return res, nil
}

func (s *Service) rebuildOnce(ctx context.Context, org string) (statsdb.RebuildResult, error) {
	if org == "" {
		return s.store.Rebuild(ctx, s.exportedResults(""))
	}
	return s.store.RebuildOrganization(ctx, org, s.exportedResults(org))
}

// finishInBackground finishes org's rebuild (every organization's when org
// is empty) in the background, once at a time per scope.
func (s *Service) finishInBackground(org string) {
	s.finishMu.Lock()
	defer s.finishMu.Unlock()
	if s.finishing[org] {
		return
	}
	s.finishing[org] = true
	go func() {
		defer func() {
			s.finishMu.Lock()
			delete(s.finishing, org)
			s.finishMu.Unlock()
		}()
		_ = s.finishRebuild(s.runCtx, org)
	}()
}

// finishRebuild retries an unfinished rebuild of org (every organization's
// when org is empty) until it finishes, then counts what it set aside.
func (s *Service) finishRebuild(ctx context.Context, org string) error {
	for attempt := 1; ; attempt++ {
		if org != "" && !s.store.Held(org) {
			break // a rebuild of everything finished it
		}
		_, err := s.rebuildOnce(ctx, org)
		if err == nil {
			break
		}
		s.log.Warn("finishing interrupted rebuild", "organization", org, "attempt", attempt, "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(min(time.Duration(attempt)*time.Second, 30*time.Second)):
		}
	}
	s.drain(ctx)
	return nil
}

// drain counts the changes set aside while organizations were rebuilt;
// when the store fails, it goes on trying in the background.
func (s *Service) drain(ctx context.Context) {
	n, err := s.store.Drain(ctx)
	if err == nil {
		if n > 0 {
			s.log.Info("deferred stats changes counted", "changes", n)
		}
		return
	}
	s.log.Warn("counting deferred stats changes", "err", err)
	if !s.draining.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer s.draining.Store(false)
		for attempt := 1; ; attempt++ {
			select {
			case <-s.runCtx.Done():
				return
			case <-time.After(min(time.Duration(attempt)*time.Second, 30*time.Second)):
			}
			if _, err := s.store.Drain(s.runCtx); err == nil {
				return
			} else {
				s.log.Warn("counting deferred stats changes", "attempt", attempt, "err", err)
			}
		}
	}()
}

// exportedResults is the source of a rebuild of org (of every organization
// when org is empty): the result documents the jobs service exports.
func (s *Service) exportedResults(org string) statsdb.Source {
	return func(ctx context.Context, each func([]tally.Change) error) error {
		return rpc.StreamBatches(ctx, s.nc, rpc.JobsExportResults, rpc.ExportRequest{BatchSize: 1000, OrganizationID: org}, func(items []rpc.ExportedResult) error {
			cs := make([]tally.Change, 0, len(items))
			for _, it := range items {
				c, err := tally.FromResult(tally.ProcessedID(it.ID), it.OrganizationID, it.ProjectID, events.Product(it.Product), it.ReceivedAt, it.Data)
				if err != nil {
					s.log.Warn("result not counted by rebuild", "result", it.ID, "err", err)
					continue
				}
				cs = append(cs, c)
			}
			if err := each(cs); err != nil {
				return err
			}
			if s.exported != nil {
				return s.exported(org, len(cs))
			}
			return nil
		})
	}
}
