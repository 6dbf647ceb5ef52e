package mongodb_test

import (
	"context"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/odavl/sync/libs/mongodb"
	"github.com/odavl/sync/libs/mongotest"
)

// These tests hold the embedded store (our FerretDB fork, patches 3 and 4 of
// third_party/ferretdb/ODAVL-PATCHES.md) to what the services rely on: lists
// and counts run on the indexes and give MongoDB's answers; concurrent
// updates and upserts are never lost.

var listIndex = mongodb.Index{Collection: "results", Name: "tenant_received_id",
	Keys: bson.D{{Key: "organizationId", Value: 1}, {Key: "projectId", Value: 1}, {Key: "receivedAt", Value: -1}, {Key: "_id", Value: -1}}}

// The plan SQLite runs for a filtered list, newest first, reads the index
// in order and sorts nothing (no temporary B-tree, not even for the ties on
// _id, which would parse every document read).
func TestFilteredSortedListUsesTheIndex(t *testing.T) {
	ctx := context.Background()
	mb := mongotest.Start(t)
	if err := mongodb.EnsureIndexes(ctx, mb.DB, []mongodb.Index{listIndex}); err != nil {
		t.Fatal(err)
	}
	c := mb.DB.Collection("results")
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var docs []any
	for i := range 200 {
		docs = append(docs, bson.D{{Key: "_id", Value: fmt.Sprintf("r%03d", i)}, {Key: "organizationId", Value: "o"},
			{Key: "projectId", Value: fmt.Sprintf("p%d", i%4)}, {Key: "receivedAt", Value: base.Add(time.Duration(i) * time.Hour)},
			{Key: "success", Value: i%2 == 0}})
	}
	if _, err := c.InsertMany(ctx, docs); err != nil {
		t.Fatal(err)
	}
	filter := bson.D{{Key: "organizationId", Value: "o"}, {Key: "projectId", Value: "p1"},
		{Key: "receivedAt", Value: bson.D{{Key: "$gte", Value: base}, {Key: "$lt", Value: base.Add(100 * time.Hour)}}},
		{Key: "success", Value: false}}
	plan := explain(t, mb.DB, bson.D{{Key: "find", Value: "results"}, {Key: "filter", Value: filter},
		{Key: "sort", Value: bson.D{{Key: "receivedAt", Value: -1}, {Key: "_id", Value: -1}}}, {Key: "limit", Value: 50}})
	t.Logf("plan:\n%s", plan)
	if !strings.Contains(plan, "USING INDEX") || !strings.Contains(plan, "_tenant_received_id") {
		t.Fatalf("plan of a filtered list does not use the tenant_received_id index:\n%s", plan)
	}
	if strings.Contains(plan, "TEMP B-TREE") {
		t.Fatalf("plan sorts every match instead of reading the index in order:\n%s", plan)
	}
	// And the answer is MongoDB's: p1 holds i%4==1 (all odd, so success false), i < 100.
	cur, err := c.Find(ctx, filter, options.Find().SetSort(bson.D{{Key: "receivedAt", Value: -1}, {Key: "_id", Value: -1}}).SetLimit(5))
	if err != nil {
		t.Fatal(err)
	}
	var got []struct {
		ID string `bson:"_id"`
	}
	if err := cur.All(ctx, &got); err != nil {
		t.Fatal(err)
	}
	want := []string{"r097", "r093", "r089", "r085", "r081"}
	if ids := idsOf(got); !slices.Equal(ids, want) {
		t.Fatalf("newest five: %v, want %v", ids, want)
	}
	n, err := c.CountDocuments(ctx, filter)
	if err != nil || n != 25 {
		t.Fatalf("count = %d, %v; want 25", n, err)
	}
}

func idsOf(docs []struct {
	ID string `bson:"_id"`
}) []string {
	out := make([]string, len(docs))
	for i, d := range docs {
		out[i] = d.ID
	}
	return out
}

// explain returns the SQLite query plan of cmd, one line per step.
func explain(t *testing.T, db *mongo.Database, cmd bson.D) string {
	t.Helper()
	var res struct {
		QueryPlanner struct {
			Plan []string `bson:"Plan"`
		} `bson:"queryPlanner"`
	}
	if err := db.RunCommand(context.Background(), bson.D{{Key: "explain", Value: cmd}}).Decode(&res); err != nil {
		t.Fatal(err)
	}
	return strings.Join(res.QueryPlanner.Plan, "\n")
}

// doc is one document of the equivalence test, and how Go evaluates it.
type doc struct {
	ID    string    `bson:"_id"`
	Org   string    `bson:"organizationId"`
	N     int64     `bson:"n"`
	At    time.Time `bson:"receivedAt"`
	Env   any       `bson:"environment,omitempty"` // a string, or an array of strings in a few
	Ok    *bool     `bson:"success,omitempty"`
	Score float64   `bson:"score"`
}

// Random filters of the kinds the pushdown handles (equality, ranges, $in,
// $and, on indexed and unindexed fields, some fields holding arrays, some
// documents missing them) return what MongoDB's semantics say, in order, and
// their counts agree.
func TestPushedDownQueriesGiveMongoDBsAnswers(t *testing.T) {
	ctx := context.Background()
	mb := mongotest.Start(t)
	err := mongodb.EnsureIndexes(ctx, mb.DB, []mongodb.Index{
		{Collection: "docs", Name: "org_at", Keys: bson.D{{Key: "organizationId", Value: 1}, {Key: "receivedAt", Value: -1}}},
		{Collection: "docs", Name: "env", Keys: bson.D{{Key: "environment", Value: 1}}},
		{Collection: "docs", Name: "n", Keys: bson.D{{Key: "n", Value: 1}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 2))
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	orgs := []string{"a", "b", "c"}
	envs := []string{"dev", "staging", "prod"}
	var all []doc
	var ins []any
	for i := range 400 {
		d := doc{ID: fmt.Sprintf("d%03d", i), Org: orgs[r.IntN(3)], N: int64(r.IntN(50)) - 10,
			At: base.Add(time.Duration(r.IntN(1000)) * time.Minute), Score: r.Float64() * 100}
		switch r.IntN(10) {
		case 0: // no environment
		case 1:
			d.Env = []string{envs[r.IntN(3)], envs[r.IntN(3)]}
		default:
			d.Env = envs[r.IntN(3)]
		}
		if r.IntN(4) > 0 {
			ok := r.IntN(2) == 0
			d.Ok = &ok
		}
		all = append(all, d)
		ins = append(ins, d)
	}
	c := mb.DB.Collection("docs")
	if _, err := c.InsertMany(ctx, ins); err != nil {
		t.Fatal(err)
	}
	for q := range 150 {
		var filter bson.D
		var preds []func(doc) bool
		for range 1 + r.IntN(3) {
			f, p := randomCondition(r, base, orgs, envs)
			filter = append(filter, f)
			preds = append(preds, p)
		}
		if r.IntN(4) == 0 { // the same conditions under $and
			var and bson.A
			for _, e := range filter {
				and = append(and, bson.D{e})
			}
			filter = bson.D{{Key: "$and", Value: and}}
		}
		var want []doc
		for _, d := range all {
			if !slices.ContainsFunc(preds, func(p func(doc) bool) bool { return !p(d) }) {
				want = append(want, d)
			}
		}
		slices.SortFunc(want, func(a, b doc) int {
			if c := b.At.Compare(a.At); c != 0 {
				return c
			}
			return strings.Compare(b.ID, a.ID)
		})
		skip, limit := r.IntN(5), 1+r.IntN(20)
		cur, err := c.Find(ctx, filter, options.Find().SetSort(bson.D{{Key: "receivedAt", Value: -1}, {Key: "_id", Value: -1}}).
			SetSkip(int64(skip)).SetLimit(int64(limit)))
		if err != nil {
			t.Fatalf("query %d %v: %v", q, filter, err)
		}
		var got []doc
		if err := cur.All(ctx, &got); err != nil {
			t.Fatal(err)
		}
		page := want[min(skip, len(want)):min(skip+limit, len(want))]
		if !slices.EqualFunc(got, page, func(a, b doc) bool { return a.ID == b.ID }) {
			t.Fatalf("query %d %v skip %d limit %d:\n got %v\nwant %v", q, filter, skip, limit, ids(got), ids(page))
		}
		n, err := c.CountDocuments(ctx, filter)
		if err != nil || n != int64(len(want)) {
			t.Fatalf("query %d %v: count %d, %v; want %d", q, filter, n, err, len(want))
		}
		// Counts by the values of a field: strings (counted by SQLite), and numbers (by the handler).
		byOrg, byN := map[any]int64{}, map[any]int64{}
		for _, d := range want {
			byOrg[d.Org]++
			byN[d.N]++
		}
		for field, want := range map[string]map[any]int64{"organizationId": byOrg, "n": byN} {
			if got := groupCounts(t, c, filter, field); !maps.Equal(got, want) {
				t.Fatalf("query %d %v: counts by %s %v, want %v", q, filter, field, got, want)
			}
		}
	}
}

// groupCounts counts the documents matching filter by the values of field.
func groupCounts(t *testing.T, c *mongo.Collection, filter bson.D, field string) map[any]int64 {
	t.Helper()
	cur, err := c.Aggregate(context.Background(), mongo.Pipeline{{{Key: "$match", Value: filter}},
		{{Key: "$group", Value: bson.D{{Key: "_id", Value: "$" + field}, {Key: "n", Value: bson.D{{Key: "$sum", Value: 1}}}}}}})
	if err != nil {
		t.Fatal(err)
	}
	var rows []struct {
		ID any   `bson:"_id"`
		N  int64 `bson:"n"`
	}
	if err := cur.All(context.Background(), &rows); err != nil {
		t.Fatal(err)
	}
	out := map[any]int64{}
	for _, r := range rows {
		out[r.ID] = r.N
	}
	return out
}

func ids(ds []doc) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.ID
	}
	return out
}

// randomCondition returns one filter condition and its meaning in Go.
func randomCondition(r *rand.Rand, base time.Time, orgs, envs []string) (bson.E, func(doc) bool) {
	envHas := func(d doc, e string) bool {
		switch v := d.Env.(type) {
		case string:
			return v == e
		case []string:
			return slices.Contains(v, e)
		}
		return false
	}
	switch r.IntN(7) {
	case 0:
		o := orgs[r.IntN(3)]
		return bson.E{Key: "organizationId", Value: o}, func(d doc) bool { return d.Org == o }
	case 1:
		e := envs[r.IntN(3)]
		return bson.E{Key: "environment", Value: e}, func(d doc) bool { return envHas(d, e) }
	case 2:
		a, b := envs[r.IntN(3)], envs[r.IntN(3)]
		return bson.E{Key: "environment", Value: bson.D{{Key: "$in", Value: bson.A{a, b}}}},
			func(d doc) bool { return envHas(d, a) || envHas(d, b) }
	case 3:
		from := base.Add(time.Duration(r.IntN(1000)) * time.Minute)
		to := from.Add(time.Duration(r.IntN(500)) * time.Minute)
		return bson.E{Key: "receivedAt", Value: bson.D{{Key: "$gte", Value: from}, {Key: "$lt", Value: to}}},
			func(d doc) bool { return !d.At.Before(from) && d.At.Before(to) }
	case 4:
		n := int64(r.IntN(50)) - 10
		return bson.E{Key: "n", Value: bson.D{{Key: "$gt", Value: n}}}, func(d doc) bool { return d.N > n }
	case 5:
		ok := r.IntN(2) == 0
		return bson.E{Key: "success", Value: ok}, func(d doc) bool { return d.Ok != nil && *d.Ok == ok }
	default: // an unindexed field
		s := r.Float64() * 100
		return bson.E{Key: "score", Value: bson.D{{Key: "$lte", Value: s}}}, func(d doc) bool { return d.Score <= s }
	}
}

// 50 concurrent $inc on one document, through updateOne and findAndModify,
// all count.
func TestConcurrentIncrementsAreNeverLost(t *testing.T) {
	ctx := context.Background()
	mb := mongotest.Start(t)
	c := mb.DB.Collection("counters")
	if _, err := c.InsertOne(ctx, bson.D{{Key: "_id", Value: "k"}, {Key: "n", Value: int64(0)}}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for i := range 50 {
		wg.Go(func() {
			inc := bson.D{{Key: "$inc", Value: bson.D{{Key: "n", Value: int64(1)}}}}
			var err error
			if i%2 == 0 {
				_, err = c.UpdateOne(ctx, bson.D{{Key: "_id", Value: "k"}}, inc)
			} else {
				err = c.FindOneAndUpdate(ctx, bson.D{{Key: "_id", Value: "k"}}, inc).Err()
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	var got struct {
		N int64 `bson:"n"`
	}
	if err := c.FindOne(ctx, bson.D{{Key: "_id", Value: "k"}}).Decode(&got); err != nil {
		t.Fatal(err)
	}
	if got.N != 50 {
		t.Fatalf("n = %d after 50 concurrent $inc, want 50", got.N)
	}
}

// Upserts racing on one natural key make one document that counts them all,
// and none fails with a duplicate key error.
func TestRacingUpsertsMakeOneDocument(t *testing.T) {
	ctx := context.Background()
	mb := mongotest.Start(t)
	if err := mongodb.EnsureIndexes(ctx, mb.DB, []mongodb.Index{{Collection: "daily", Name: "key", Unique: true,
		Keys: bson.D{{Key: "org", Value: 1}, {Key: "day", Value: 1}}}}); err != nil {
		t.Fatal(err)
	}
	c := mb.DB.Collection("daily")
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for range 40 {
		wg.Go(func() {
			_, err := c.UpdateOne(ctx, bson.D{{Key: "org", Value: "o"}, {Key: "day", Value: "2026-12-03"}},
				bson.D{{Key: "$inc", Value: bson.D{{Key: "uploads", Value: int64(1)}}}}, options.UpdateOne().SetUpsert(true))
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("racing upsert: %v", err)
		}
	}
	var got []struct {
		Uploads int64 `bson:"uploads"`
	}
	cur, err := c.Find(ctx, bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	if err := cur.All(ctx, &got); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Uploads != 40 {
		t.Fatalf("documents %+v, want one with 40 uploads", got)
	}
}

// The store refuses a NaN (SQLite cannot hold one) as upstream does, by
// closing the connection, and goes on serving.
func TestNaNIsRefusedAndTheStoreGoesOn(t *testing.T) {
	ctx := context.Background()
	mb := mongotest.Start(t)
	c := mb.DB.Collection("nan")
	if _, err := c.InsertOne(ctx, bson.D{{Key: "_id", Value: "a"}, {Key: "x", Value: bson.D{{Key: "y", Value: bson.A{1.5, math.NaN()}}}}}); err == nil {
		t.Fatal("a document holding a NaN was stored")
	}
	if _, err := c.InsertOne(ctx, bson.D{{Key: "_id", Value: "b"}, {Key: "x", Value: 1.5}}); err != nil {
		t.Fatalf("the next insert: %v", err)
	}
	var got struct{ X float64 }
	if err := c.FindOne(ctx, bson.D{{Key: "_id", Value: "b"}}).Decode(&got); err != nil || got.X != 1.5 {
		t.Fatalf("read back: %+v %v", got, err)
	}
	if n, err := c.CountDocuments(ctx, bson.D{}); err != nil || n != 1 {
		t.Fatalf("count %d %v, want 1", n, err)
	}
}
