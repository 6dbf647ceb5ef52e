package stats

import (
	"context"
	"time"

	"github.com/odavl/sync/libs/events"
	"github.com/odavl/sync/libs/rpc"
	"github.com/odavl/sync/services/stats/internal/statsdb"
	"github.com/odavl/sync/services/stats/internal/tally"
)

func (s *Service) rebuildRequest(ctx context.Context, _ rpc.StatsRebuildRequest) (rpc.StatsRebuildResponse, error) {
	start := s.now().UTC()
	res, err := s.rebuild(ctx)
	if err != nil {
		return rpc.StatsRebuildResponse{}, err
	}
	return rpc.StatsRebuildResponse{Generation: res.Generation, Results: res.Changes, Aggregates: res.Aggregates,
		StartedAt: start, FinishedAt: s.now().UTC()}, nil
}

// rebuild recomputes the aggregates from the result documents the jobs
// service exports.
func (s *Service) rebuild(ctx context.Context) (statsdb.RebuildResult, error) {
	start := time.Now()
	res, err := s.store.Rebuild(ctx, s.exportedResults)
	if err != nil {
		s.log.Error("stats rebuild failed", "err", err, "countingHeld", s.store.RebuildUnfinished())
		if s.store.RebuildUnfinished() && s.finishing.CompareAndSwap(false, true) {
			// Counting waits for the rebuild: keep trying in the background.
			go func() {
				defer s.finishing.Store(false)
				_ = s.finishRebuild(s.runCtx)
			}()
		}
		return res, err
	}
	s.log.Info("stats rebuilt", "generation", res.Generation, "results", res.Changes, "aggregates", res.Aggregates, "took", time.Since(start))
	return res, nil
}

func (s *Service) exportedResults(ctx context.Context, each func([]tally.Change) error) error {
	return rpc.StreamBatches(ctx, s.nc, rpc.JobsExportResults, rpc.ExportRequest{BatchSize: 1000}, func(items []rpc.ExportedResult) error {
		cs := make([]tally.Change, 0, len(items))
		for _, it := range items {
			c, err := tally.FromResult(tally.ProcessedID(it.ID), it.OrganizationID, it.ProjectID, events.Product(it.Product), it.ReceivedAt, it.Data)
			if err != nil {
				s.log.Warn("result not counted by rebuild", "result", it.ID, "err", err)
				continue
			}
			cs = append(cs, c)
		}
		return each(cs)
	})
}
