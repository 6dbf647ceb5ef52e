package stats

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/odavl/sync/libs/events"
	"github.com/odavl/sync/libs/rpc"
	"github.com/odavl/sync/services/stats/internal/tally"
)

// Result collections of the jobs service, as it stores them (the benchmark
// seeds them directly: 100k uploads through the pipeline would take too long).
var benchCollections = map[events.Product]string{events.Insight: "insight_results", events.Autopilot: "autopilot_runs", events.Guardian: "guardian_runs"}

const (
	benchProjects = 4
	benchDays     = 30
)

// seedResults stores n result documents spread over projects and days, the
// shape the jobs service writes.
func seedResults(b *testing.B, db *mongo.Database, n int, end time.Time) {
	b.Helper()
	ctx := context.Background()
	batch := map[events.Product][]any{}
	flush := func(p events.Product) {
		if len(batch[p]) == 0 {
			return
		}
		if _, err := db.Collection(benchCollections[p]).InsertMany(ctx, batch[p]); err != nil {
			b.Fatal(err)
		}
		batch[p] = batch[p][:0]
	}
	for i := range n {
		p := events.Products[i%3]
		project := fmt.Sprintf("p%d", i%benchProjects)
		at := end.AddDate(0, 0, -(i/3)%benchDays).Add(-time.Duration(i%3600) * time.Second)
		id := fmt.Sprintf("u%07d", i)
		doc := bson.D{{Key: "_id", Value: id}, {Key: "organizationId", Value: "o1"}, {Key: "projectId", Value: project},
			{Key: "product", Value: string(p)}, {Key: "idempotencyKey", Value: id}, {Key: "jobId", Value: id},
			{Key: "timestamp", Value: at}, {Key: "receivedAt", Value: at}, {Key: "processedAt", Value: at}}
		var data bson.D
		switch p {
		case events.Insight:
			data = bson.D{{Key: "projectId", Value: project}, {Key: "organizationId", Value: "o1"}, {Key: "timestamp", Value: at.Format(time.RFC3339)},
				{Key: "detectors", Value: bson.A{"eslint"}}, {Key: "totalIssues", Value: int32(10)},
				{Key: "issuesBySeverity", Value: bson.D{{Key: "critical", Value: int32(i / 3 % 3)}, {Key: "high", Value: int32(2)}, {Key: "medium", Value: int32(3)}, {Key: "low", Value: int32(5 - i/3%3)}}},
				{Key: "issues", Value: bson.A{}}}
		case events.Autopilot:
			ph := bson.D{{Key: "status", Value: "completed"}, {Key: "duration", Value: 1.5}}
			data = bson.D{{Key: "runId", Value: id}, {Key: "projectId", Value: project}, {Key: "organizationId", Value: "o1"}, {Key: "timestamp", Value: at.Format(time.RFC3339)},
				{Key: "phases", Value: bson.D{{Key: "observe", Value: ph}, {Key: "decide", Value: ph}, {Key: "act", Value: ph}, {Key: "verify", Value: ph}, {Key: "learn", Value: ph}}},
				{Key: "filesModified", Value: bson.A{"a.go"}}, {Key: "trustScore", Value: float64(i%100) / 100}, {Key: "qualityImproved", Value: true}, {Key: "success", Value: i/12%4 != 0}}
			doc = append(doc, bson.E{Key: "runId", Value: id}, bson.E{Key: "success", Value: i/12%4 != 0})
		case events.Guardian:
			data = bson.D{{Key: "testRunId", Value: id}, {Key: "projectId", Value: project}, {Key: "organizationId", Value: "o1"}, {Key: "timestamp", Value: at.Format(time.RFC3339)},
				{Key: "url", Value: "https://example.com"}, {Key: "environment", Value: "staging"}, {Key: "screenshots", Value: bson.A{}}, {Key: "passed", Value: i%5 != 0},
				{Key: "tests", Value: bson.D{
					{Key: "accessibility", Value: bson.D{{Key: "score", Value: 80 + float64(i%200)/10}, {Key: "violations", Value: int32(1)}, {Key: "passes", Value: int32(9)}}},
					{Key: "performance", Value: bson.D{{Key: "loadTime", Value: float64(1000 + i%500)}, {Key: "ttfb", Value: 100.0}, {Key: "fcp", Value: 200.0}, {Key: "lcp", Value: 300.0}}},
					{Key: "security", Value: bson.D{{Key: "vulnerabilities", Value: int32(i % 2)}, {Key: "warnings", Value: int32(0)}}},
				}}}
			doc = append(doc, bson.E{Key: "testRunId", Value: id}, bson.E{Key: "passed", Value: i%5 != 0}, bson.E{Key: "environment", Value: "staging"})
		}
		doc = append(doc, bson.E{Key: "data", Value: data})
		batch[p] = append(batch[p], doc)
		if len(batch[p]) == 1000 {
			flush(p)
		}
	}
	for _, p := range events.Products {
		flush(p)
	}
}

// scanSummary is the baseline: the same figures computed from the source
// documents, reading every result of the project (what a summary costs
// without aggregates).
func scanSummary(ctx context.Context, db *mongo.Database, org, project string) (tally.Counters, error) {
	sum := tally.Counters{}
	for _, p := range events.Products {
		cur, err := db.Collection(benchCollections[p]).Find(ctx, bson.D{{Key: "organizationId", Value: org}, {Key: "projectId", Value: project}})
		if err != nil {
			return nil, err
		}
		for cur.Next(ctx) {
			var r struct {
				ID         string    `bson:"_id"`
				ReceivedAt time.Time `bson:"receivedAt"`
				Data       bson.Raw  `bson:"data"`
			}
			if err := cur.Decode(&r); err != nil {
				return nil, err
			}
			js, err := bson.MarshalExtJSON(r.Data, false, false)
			if err != nil {
				return nil, err
			}
			c, err := tally.FromResult(r.ID, org, project, p, r.ReceivedAt, js)
			if err != nil {
				return nil, err
			}
			sum.Add(c.Inc)
		}
		if err := cur.Err(); err != nil {
			return nil, err
		}
		_ = cur.Close(ctx)
	}
	return sum, nil
}

// BenchmarkSummaryRead100k measures reading figures with 100,000 uploads
// stored (4 projects, 30 days), against the baseline of computing the same
// summary by scanning the project's result documents, in the same run.
// Run it alone: go test -run '^$' -bench SummaryRead100k -benchtime 20x .
func BenchmarkSummaryRead100k(b *testing.B) {
	n := benchUploads()
	tb := newBundle(b)
	end := time.Now().UTC()
	start := time.Now()
	seedResults(b, tb.db, n, end)
	b.Logf("seeded %d result documents in %s", n, time.Since(start).Round(time.Millisecond))
	tb.startJobs(b)
	r := tb.start(b, nil)
	start = time.Now()
	rctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	res, err := rpc.Call[rpc.StatsRebuildResponse](rctx, tb.nats.Conn, rpc.StatsRebuild, rpc.StatsRebuildRequest{})
	if err != nil || res.Results != int64(n) {
		b.Fatalf("rebuild: %+v %v", res, err)
	}
	b.Logf("rebuilt %d results into %d aggregates in %s", res.Results, res.Aggregates, time.Since(start).Round(time.Millisecond))
	_ = r

	ctx := context.Background()
	start = time.Now()
	project := rpc.StatsQuery{Tenant: rpc.Tenant{OrganizationID: "o1", ProjectID: "p1"}}
	// The aggregates agree with the scan.
	scanned, err := scanSummary(ctx, tb.db, "o1", "p1")
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("one scan of project p1's results took %s", time.Since(start).Round(time.Millisecond))
	got, err := rpc.Call[rpc.StatsSummaryResponse](ctx, tb.nats.Conn, rpc.StatsSummary, project)
	if err != nil {
		b.Fatal(err)
	}
	if want := reportFigures(scanned); !cmp.Equal(want, got.Figures) {
		b.Fatalf("summary %+v, scan %+v", got.Figures, want)
	}
	from := end.AddDate(0, 0, -(benchDays - 1)).Format(tally.DayFormat)
	to := end.Format(tally.DayFormat)
	ranged := project
	ranged.From, ranged.To = from, to
	org := rpc.StatsQuery{Tenant: rpc.Tenant{OrganizationID: "o1"}, Scope: rpc.ScopeOrganization, From: from, To: to}
	call := func(subject string, q rpc.StatsQuery) func(b *testing.B) {
		return func(b *testing.B) {
			for b.Loop() {
				var err error
				if subject == rpc.StatsSummary {
					_, err = rpc.Call[rpc.StatsSummaryResponse](ctx, tb.nats.Conn, subject, q)
				} else {
					_, err = rpc.Call[rpc.StatsTrendsResponse](ctx, tb.nats.Conn, subject, q)
				}
				if err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	b.Run("summary/project/all-time", call(rpc.StatsSummary, project))
	b.Run("summary/project/30-days", call(rpc.StatsSummary, ranged))
	b.Run("summary/organization/30-days", call(rpc.StatsSummary, org))
	b.Run("trends/project/30-days", call(rpc.StatsTrends, ranged))
	b.Run("baseline/scan-project-results", func(b *testing.B) {
		for b.Loop() {
			if _, err := scanSummary(ctx, tb.db, "o1", "p1"); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// benchUploads is 100,000, or STATS_BENCH_UPLOADS for a quick run.
func benchUploads() int {
	if v, err := strconv.Atoi(os.Getenv("STATS_BENCH_UPLOADS")); err == nil && v > 0 {
		return v
	}
	return 100_000
}
