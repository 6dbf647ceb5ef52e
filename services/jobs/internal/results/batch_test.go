package results_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/odavl/sync/libs/events"
	"github.com/odavl/sync/libs/mongotest"
	"github.com/odavl/sync/services/jobs/internal/results"
)

// A result and its critical alert are stored in one flush of the
// inserter, and the alert only once the result is: a result the store
// refuses leaves no alert behind, and a result stored before (a
// redelivery after a crash between the two writes) gets its alert.
func TestAnAlertIsStoredWithItsResultAndNeverWithout(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	mb := mongotest.Start(t)
	s := results.New(mb.DB)
	in := results.NewInserter(ctx, s)

	result := func(id string, data bson.D) results.Result {
		raw, err := bson.Marshal(data)
		if err != nil {
			t.Fatal(err)
		}
		return results.Result{ID: id, OrganizationID: "o", ProjectID: "p", Product: events.Insight, JobID: id,
			ReceivedAt: time.Now().UTC(), ProcessedAt: time.Now().UTC(), Data: raw}
	}
	alert := func(id string) results.Alert {
		return results.Alert{ID: "alert-" + id, UploadID: id, OrganizationID: "o", ProjectID: "p", Critical: 1,
			Messages: []string{"a.ts:1 eval (eslint)"}, RaisedAt: time.Now().UTC()}
	}
	good := bson.D{{Key: "totalIssues", Value: 1}}
	refused := bson.D{{Key: "$where", Value: 1}} // no key may start with '$'

	// Stored before, without its alert.
	if err := s.Insert(ctx, result("up-old", good)); err != nil {
		t.Fatal(err)
	}
	const n = 40
	errs := make([]error, n+1)
	var wg sync.WaitGroup
	for i := range n + 1 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id, data := fmt.Sprintf("up-%02d", i), good
			switch {
			case i == n:
				id = "up-old"
			case i%5 == 0:
				data = refused
			}
			if i%2 == 0 || i%5 == 0 || i == n {
				errs[i] = in.InsertWithAlert(ctx, result(id, data), alert(id))
			} else {
				errs[i] = in.Insert(ctx, result(id, data))
			}
		}()
	}
	wg.Wait()

	stored := func(coll, id string) bool {
		n, err := mb.DB.Collection(coll).CountDocuments(ctx, bson.D{{Key: "_id", Value: id}})
		if err != nil {
			t.Fatal(err)
		}
		return n == 1
	}
	for i := range n + 1 {
		id := fmt.Sprintf("up-%02d", i)
		withAlert := i%2 == 0 || i%5 == 0
		switch {
		case i == n:
			if !errors.Is(errs[i], results.ErrExists) || !stored(results.AlertsCollection, "alert-up-old") {
				t.Errorf("a result stored before: %v, alert stored %v; want ErrExists and its alert", errs[i], stored(results.AlertsCollection, "alert-up-old"))
			}
		case i%5 == 0:
			if errs[i] == nil || errors.Is(errs[i], results.ErrExists) {
				t.Errorf("%s: a refused result answered %v", id, errs[i])
			}
			if stored("insight_results", id) || stored(results.AlertsCollection, "alert-"+id) {
				t.Errorf("%s: refused, yet its result or its alert is stored", id)
			}
		default:
			if errs[i] != nil {
				t.Errorf("%s: %v", id, errs[i])
			}
			if !stored("insight_results", id) || stored(results.AlertsCollection, "alert-"+id) != withAlert {
				t.Errorf("%s: result stored %v, alert stored %v (want %v)", id, stored("insight_results", id), stored(results.AlertsCollection, "alert-"+id), withAlert)
			}
		}
	}

	// A repeat answers ErrExists and stores no second alert.
	if err := in.InsertWithAlert(ctx, result("up-02", good), alert("up-02")); !errors.Is(err, results.ErrExists) {
		t.Errorf("a repeat answered %v, want ErrExists", err)
	}
	if c, err := mb.DB.Collection(results.AlertsCollection).CountDocuments(ctx, bson.D{}); err != nil || c != 17 {
		t.Errorf("%d alerts stored (%v), want 17: one for each of the 16 stored results that has one, and up-old's", c, err)
	}
}
