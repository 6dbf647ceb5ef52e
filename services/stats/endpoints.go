package stats

import (
	"context"
	"sync"

	"github.com/odavl/sync/libs/events"
	"github.com/odavl/sync/libs/rpc"
	"github.com/odavl/sync/services/stats/internal/report"
	"github.com/odavl/sync/services/stats/internal/statsdb"
	"github.com/odavl/sync/services/stats/internal/tally"
)

// lookups is how many aggregates a request reads at once.
const lookups = 8

// scope checks a query's tenant and scope and lists the projects it covers.
func (s *Service) scope(ctx context.Context, q rpc.StatsQuery) (string, []string, []rpc.FieldError, error) {
	var fields []rpc.FieldError
	if !events.ValidToken(q.OrganizationID) {
		fields = append(fields, rpc.FieldError{Field: "organizationId", Message: "must be 1-64 letters, digits, '-' or '_'"})
	}
	scope := q.Scope
	if scope == "" {
		scope = rpc.ScopeProject
	}
	switch scope {
	case rpc.ScopeProject:
		if !events.ValidToken(q.ProjectID) {
			fields = append(fields, rpc.FieldError{Field: "projectId", Message: "must be 1-64 letters, digits, '-' or '_'"})
		}
	case rpc.ScopeOrganization:
	default:
		fields = append(fields, rpc.FieldError{Field: "scope", Message: "must be project or organization"})
	}
	if len(fields) > 0 {
		return scope, nil, fields, nil
	}
	if scope == rpc.ScopeProject {
		return scope, []string{q.ProjectID}, nil, nil
	}
	ps, err := s.store.Projects(ctx, q.OrganizationID)
	return scope, ps, nil, err
}

func badQuery(fields []rpc.FieldError) error {
	return &rpc.Error{Status: 400, Message: "invalid stats query", Fields: fields}
}

type cell struct{ project, day string }

// read fetches the figures of every project and day (or AllTime): the
// month aggregates the days fall in, by _id, a few at a time.
func (s *Service) read(ctx context.Context, org string, projects, days []string) (map[cell]tally.Counters, error) {
	type doc struct{ project, period string }
	var docs []doc
	seen := map[doc]bool{}
	for _, p := range projects {
		for _, d := range days {
			period := statsdb.AllTime
			if d != statsdb.AllTime {
				period, _ = statsdb.MonthOf(d)
			}
			if k := (doc{p, period}); !seen[k] {
				seen[k] = true
				docs = append(docs, k)
			}
		}
	}
	aggs := make(map[doc]statsdb.Aggregate, len(docs))
	var (
		mu       sync.Mutex
		firstErr error
		wg       sync.WaitGroup
	)
	work := make(chan doc)
	for range min(lookups, len(docs)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for d := range work {
				a, err := s.store.Read(ctx, org, d.project, d.period)
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				aggs[d] = a
				mu.Unlock()
			}
		}()
	}
	for _, d := range docs {
		work <- d
	}
	close(work)
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	out := make(map[cell]tally.Counters, len(projects)*len(days))
	for _, p := range projects {
		for _, d := range days {
			if d == statsdb.AllTime {
				out[cell{p, d}] = aggs[doc{p, statsdb.AllTime}].Counters
				continue
			}
			month, dd := statsdb.MonthOf(d)
			out[cell{p, d}] = aggs[doc{p, month}].Days[dd]
		}
	}
	return out, nil
}

func (s *Service) summary(ctx context.Context, q rpc.StatsQuery) (rpc.StatsSummaryResponse, error) {
	scope, projects, fields, err := s.scope(ctx, q)
	r, bounded, rfields := report.ParseRange(q.From, q.To, s.now().UTC(), 0)
	fields = append(fields, rfields...)
	if len(fields) > 0 {
		return rpc.StatsSummaryResponse{}, badQuery(fields)
	}
	if err != nil {
		return rpc.StatsSummaryResponse{}, err
	}
	days := []string{statsdb.AllTime}
	out := rpc.StatsSummaryResponse{OrganizationID: q.OrganizationID, Scope: scope}
	if scope == rpc.ScopeProject {
		out.ProjectID = q.ProjectID
	}
	if bounded {
		days = r.Each()
		out.From, out.To = r.Format()
	}
	cells, err := s.read(ctx, q.OrganizationID, projects, days)
	if err != nil {
		return rpc.StatsSummaryResponse{}, err
	}
	sum := tally.Counters{}
	for _, c := range cells {
		sum.Add(c)
	}
	out.Figures = report.FiguresOf(sum)
	return out, nil
}

// trendDays is the default length of a trends range.
const trendDays = 30

func (s *Service) trends(ctx context.Context, q rpc.StatsQuery) (rpc.StatsTrendsResponse, error) {
	scope, projects, fields, err := s.scope(ctx, q)
	r, _, rfields := report.ParseRange(q.From, q.To, s.now().UTC(), trendDays)
	fields = append(fields, rfields...)
	if len(fields) > 0 {
		return rpc.StatsTrendsResponse{}, badQuery(fields)
	}
	if err != nil {
		return rpc.StatsTrendsResponse{}, err
	}
	prev := r.Previous()
	out := rpc.StatsTrendsResponse{OrganizationID: q.OrganizationID, Scope: scope, Days: []rpc.TrendDay{}, Signals: []rpc.ProjectSignals{}}
	if scope == rpc.ScopeProject {
		out.ProjectID = q.ProjectID
	}
	out.From, out.To = r.Format()
	out.PreviousFrom, out.PreviousTo = prev.Format()
	cells, err := s.read(ctx, q.OrganizationID, projects, append(prev.Each(), r.Each()...))
	if err != nil {
		return rpc.StatsTrendsResponse{}, err
	}
	for _, d := range r.Each() {
		sum := tally.Counters{}
		for _, p := range projects {
			sum.Add(cells[cell{p, d}])
		}
		out.Days = append(out.Days, rpc.TrendDay{Day: d, Figures: report.FiguresOf(sum)})
	}
	for _, p := range projects {
		cur, old := tally.Counters{}, tally.Counters{}
		for _, d := range r.Each() {
			cur.Add(cells[cell{p, d}])
		}
		for _, d := range prev.Each() {
			old.Add(cells[cell{p, d}])
		}
		out.Signals = append(out.Signals, report.Signals(p, cur, old))
	}
	return out, nil
}
