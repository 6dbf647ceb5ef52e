package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"runtime"
	"sync"
	"time"

	"github.com/nats-io/nats.go/micro"

	"github.com/odavl/sync/libs/events"
	"github.com/odavl/sync/libs/rpc"
	"github.com/odavl/sync/services/jobs/internal/queue"
	"github.com/odavl/sync/services/jobs/internal/results"
)

// Version of the service, reported through micro.
const Version = "0.1.0"

func (s *Service) addEndpoints(ctx context.Context) (micro.Service, error) {
	const timeout = 10 * time.Second
	eps := []rpc.Endpoint{
		{Name: "results-list", Subject: rpc.JobsListResults, Handler: rpc.Handler(ctx, s.log, timeout, s.listResults)},
		{Name: "results-get", Subject: rpc.JobsGetResult, Handler: rpc.Handler(ctx, s.log, timeout, s.getResult)},
		{Name: "jobs-get", Subject: rpc.JobsGetJob, Handler: rpc.Handler(ctx, s.log, timeout, s.getJob)},
		{Name: "alerts-list", Subject: rpc.JobsListAlerts, Handler: rpc.Handler(ctx, s.log, timeout, s.listAlerts)},
	}
	eps = append(eps, s.exportEndpoints(ctx)...)
	eps = append(eps, s.queueEndpoints(ctx)...)
	return rpc.AddService(s.nc, "jobs", Version, "ODAVL Sync jobs: results, jobs, alerts", eps)
}

func (s *Service) listResults(ctx context.Context, req rpc.ListResultsRequest) (rpc.Raw, error) {
	p := events.Product(req.Product)
	if !p.Valid() {
		return nil, rpc.BadRequest("unknown product %q", req.Product)
	}
	rs, total, err := s.results.List(ctx, results.Query{
		OrganizationID: req.OrganizationID, ProjectID: req.ProjectID, Product: p,
		From: req.From, To: req.To, Success: req.Success, Passed: req.Passed, Environment: req.Environment,
		Limit: req.Limit, Offset: req.Offset,
	})
	if err != nil {
		return nil, err
	}
	items, err := renderAll(rs)
	if err != nil {
		return nil, err
	}
	return rpc.ListResultsResponse{Items: items, Total: total, Limit: req.Limit, Offset: req.Offset}.Encode(), nil
}

// renderAll renders a page of results as the API shows them, on every core
// (a page is 50 results of ~10 KB: the rendering is most of a list's CPU).
func renderAll(rs []results.Result) ([]json.RawMessage, error) {
	items := make([]json.RawMessage, len(rs))
	errs := make([]error, len(rs))
	workers := min(runtime.GOMAXPROCS(0), len(rs))
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(rs); i += workers {
				items[i], errs[i] = rs[i].JSON()
			}
		}()
	}
	wg.Wait()
	return items, errors.Join(errs...)
}

func (s *Service) getResult(ctx context.Context, req rpc.GetRequest) (json.RawMessage, error) {
	r, err := s.results.Get(ctx, req.OrganizationID, req.ProjectID, events.Product(req.Product), req.ID)
	if errors.Is(err, results.ErrNotFound) {
		return nil, rpc.NotFound("no %s result %q in this project", req.Product, req.ID)
	}
	if err != nil {
		return nil, err
	}
	return r.JSON()
}

func (s *Service) getJob(ctx context.Context, req rpc.GetRequest) (rpc.Job, error) {
	j, err := s.queue.Get(ctx, req.OrganizationID, req.ProjectID, req.ID)
	if errors.Is(err, queue.ErrNotFound) {
		return rpc.Job{}, rpc.NotFound("no job %q in this project", req.ID)
	}
	if err != nil {
		return rpc.Job{}, err
	}
	return j.API(), nil
}

// AlertList is a page of alerts.
type AlertList struct {
	Items  []results.Alert `json:"items"`
	Total  int64           `json:"total"`
	Limit  int             `json:"limit"`
	Offset int             `json:"offset"`
}

func (s *Service) listAlerts(ctx context.Context, req rpc.ListResultsRequest) (AlertList, error) {
	as, total, err := s.results.ListAlerts(ctx, req.OrganizationID, req.ProjectID, req.Limit, req.Offset)
	if err != nil {
		return AlertList{}, err
	}
	return AlertList{Items: as, Total: total, Limit: req.Limit, Offset: req.Offset}, nil
}
