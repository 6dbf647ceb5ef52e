// Package results stores the result documents of the three products — one
// document per accepted upload, keyed by the upload id — and the critical
// alerts, and reads them back per project.
package results

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/odavl/sync/libs/events"
	"github.com/odavl/sync/libs/mongodb"
)

// Collection is where results of product p are kept.
func Collection(p events.Product) string {
	switch p {
	case events.Autopilot:
		return "autopilot_runs"
	case events.Guardian:
		return "guardian_runs"
	default:
		return "insight_results"
	}
}

// AlertsCollection holds the critical alerts.
const AlertsCollection = "alerts"

// Store reads and writes result documents.
type Store struct {
	db *mongo.Database
}

// New returns a Store over db.
func New(db *mongo.Database) *Store { return &Store{db: db} }

// Indexes are the indexes the store's queries use.
func Indexes() []mongodb.Index {
	// A page is sorted by receivedAt and then _id, both in the index: the
	// store reads 50 entries in order and sorts nothing (MongoDB would
	// sort the ties in memory, the embedded store parse each document).
	var idx []mongodb.Index
	for _, p := range events.Products {
		idx = append(idx, mongodb.Index{
			Collection: Collection(p), Name: "tenant_received_id", Replaces: "tenant_received",
			Keys: bson.D{{Key: "organizationId", Value: 1}, {Key: "projectId", Value: 1}, {Key: "receivedAt", Value: -1}, {Key: "_id", Value: -1}},
		})
	}
	// The list filters of each product, newest first, so that a filtered
	// page and its total are read from an index.
	tenant := func(field string) bson.D {
		return bson.D{{Key: "organizationId", Value: 1}, {Key: "projectId", Value: 1}, {Key: field, Value: 1}, {Key: "receivedAt", Value: -1}, {Key: "_id", Value: -1}}
	}
	idx = append(idx,
		mongodb.Index{Collection: Collection(events.Autopilot), Name: "tenant_success_received_id", Replaces: "tenant_success_received", Keys: tenant("success")},
		mongodb.Index{Collection: Collection(events.Guardian), Name: "tenant_passed_received_id", Replaces: "tenant_passed_received", Keys: tenant("passed")},
		mongodb.Index{Collection: Collection(events.Guardian), Name: "tenant_environment_received_id", Replaces: "tenant_environment_received", Keys: tenant("environment")},
	)
	idx = append(idx,
		mongodb.Index{Collection: Collection(events.Autopilot), Name: "run_id", Unique: true,
			Keys: bson.D{{Key: "organizationId", Value: 1}, {Key: "projectId", Value: 1}, {Key: "runId", Value: 1}}},
		mongodb.Index{Collection: Collection(events.Guardian), Name: "test_run_id", Unique: true,
			Keys: bson.D{{Key: "organizationId", Value: 1}, {Key: "projectId", Value: 1}, {Key: "testRunId", Value: 1}}},
		mongodb.Index{Collection: AlertsCollection, Name: "tenant_raised",
			Keys: bson.D{{Key: "organizationId", Value: 1}, {Key: "projectId", Value: 1}, {Key: "raisedAt", Value: -1}}},
	)
	return idx
}

// Result is a stored upload.
type Result struct {
	ID             string         `bson:"_id"`
	OrganizationID string         `bson:"organizationId"`
	ProjectID      string         `bson:"projectId"`
	Product        events.Product `bson:"product"`
	IdempotencyKey string         `bson:"idempotencyKey"`
	JobID          string         `bson:"jobId"`
	Timestamp      time.Time      `bson:"timestamp"`
	ReceivedAt     time.Time      `bson:"receivedAt"`
	ProcessedAt    time.Time      `bson:"processedAt"`
	// Natural keys and filter fields, copied from the payload.
	RunID       string `bson:"runId,omitempty"`
	TestRunID   string `bson:"testRunId,omitempty"`
	Success     *bool  `bson:"success,omitempty"`
	Passed      *bool  `bson:"passed,omitempty"`
	Environment string `bson:"environment,omitempty"`
	// Data is the upload as the client sent it (validated).
	Data bson.Raw `bson:"data"`
}

// ErrExists is returned by Insert when the result is stored already.
var ErrExists = errors.New("result exists")

// Insert stores r. A second insert of the same upload (or of a run id already
// stored) is ErrExists, which callers treat as done: inserts are idempotent.
func (s *Store) Insert(ctx context.Context, r Result) error {
	_, err := s.db.Collection(Collection(r.Product)).InsertOne(ctx, r)
	if mongo.IsDuplicateKeyError(err) {
		return ErrExists
	}
	if err != nil {
		return fmt.Errorf("inserting %s result %s: %w", r.Product, r.ID, err)
	}
	return nil
}

// Query selects results of one project.
type Query struct {
	OrganizationID, ProjectID string
	Product                   events.Product
	From, To                  *time.Time
	Success, Passed           *bool
	Environment               string
	Limit, Offset             int
}

func (q Query) filter() bson.D {
	f := bson.D{{Key: "organizationId", Value: q.OrganizationID}, {Key: "projectId", Value: q.ProjectID}}
	f = mongodb.TimeRange(f, "receivedAt", q.From, q.To)
	if q.Success != nil {
		f = append(f, bson.E{Key: "success", Value: *q.Success})
	}
	if q.Passed != nil {
		f = append(f, bson.E{Key: "passed", Value: *q.Passed})
	}
	if q.Environment != "" {
		f = append(f, bson.E{Key: "environment", Value: q.Environment})
	}
	return f
}

// List returns a page of results, newest first, and the count of all that match.
func (s *Store) List(ctx context.Context, q Query) ([]Result, int64, error) {
	coll := s.db.Collection(Collection(q.Product))
	f := q.filter()
	total, err := coll.CountDocuments(ctx, f)
	if err != nil {
		return nil, 0, fmt.Errorf("counting results: %w", err)
	}
	opts := options.Find().SetSort(bson.D{{Key: "receivedAt", Value: -1}, {Key: "_id", Value: -1}}).
		SetSkip(int64(q.Offset)).SetLimit(int64(q.Limit))
	cur, err := coll.Find(ctx, f, opts)
	if err != nil {
		return nil, 0, fmt.Errorf("listing results: %w", err)
	}
	var out []Result
	if err := cur.All(ctx, &out); err != nil {
		return nil, 0, fmt.Errorf("reading results: %w", err)
	}
	return out, total, nil
}

// ErrNotFound is returned by Get for an unknown id.
var ErrNotFound = errors.New("result not found")

// Get returns one result of a project.
func (s *Store) Get(ctx context.Context, org, project string, p events.Product, id string) (Result, error) {
	var r Result
	err := s.db.Collection(Collection(p)).FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&r)
	if errors.Is(err, mongo.ErrNoDocuments) || (err == nil && (r.OrganizationID != org || r.ProjectID != project)) {
		return Result{}, ErrNotFound
	}
	if err != nil {
		return Result{}, fmt.Errorf("reading result %s: %w", id, err)
	}
	return r, nil
}

// JSON renders a result as the API shows it: the upload's own fields plus
// id, receivedAt, processedAt and jobId. The upload's fields are rendered
// once and ours appended (a list renders 50 results of ~10 KB); an upload
// that carries one of our names (the schemas refuse them today) has it
// replaced instead.
func (r Result) JSON() (json.RawMessage, error) {
	b, ok := appendRelaxedJSON(make([]byte, 0, len(r.Data)+len(r.Data)/4+160), r.Data)
	if !ok {
		var err error
		if b, err = bson.MarshalExtJSON(r.Data, false, false); err != nil {
			return nil, fmt.Errorf("rendering result %s: %w", r.ID, err)
		}
	}
	ours := []struct {
		key string
		val any
	}{{"id", r.ID}, {"receivedAt", r.ReceivedAt.UTC()}, {"processedAt", r.ProcessedAt.UTC()}, {"jobId", r.JobID}}
	for _, f := range ours {
		if _, err := r.Data.LookupErr(f.key); err == nil {
			return r.jsonReplacing(b)
		}
	}
	if len(b) < 2 || b[len(b)-1] != '}' {
		return nil, fmt.Errorf("rendering result %s: data is not a document", r.ID)
	}
	out := b[:len(b)-1] // b has room for ours
	for i, f := range ours {
		if i > 0 || len(b) > 2 {
			out = append(out, ',')
		}
		vb, _ := json.Marshal(f.val)
		out = append(out, '"')
		out = append(out, f.key...)
		out = append(out, '"', ':')
		out = append(out, vb...)
	}
	return append(out, '}'), nil
}

// jsonReplacing is JSON for data that holds one of our field names.
func (r Result) jsonReplacing(b []byte) (json.RawMessage, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("rendering result %s: %w", r.ID, err)
	}
	put := func(k string, v any) {
		vb, _ := json.Marshal(v)
		m[k] = vb
	}
	put("id", r.ID)
	put("receivedAt", r.ReceivedAt.UTC())
	put("processedAt", r.ProcessedAt.UTC())
	put("jobId", r.JobID)
	return json.Marshal(m)
}

// Alert is a stored critical alert.
type Alert struct {
	ID             string    `bson:"_id" json:"id"`
	UploadID       string    `bson:"uploadId" json:"uploadId"`
	OrganizationID string    `bson:"organizationId" json:"organizationId"`
	ProjectID      string    `bson:"projectId" json:"projectId"`
	Critical       int64     `bson:"critical" json:"critical"`
	Messages       []string  `bson:"messages" json:"messages"`
	RaisedAt       time.Time `bson:"raisedAt" json:"raisedAt"`
}

// InsertAlert stores an alert once; a second insert is a no-op.
func (s *Store) InsertAlert(ctx context.Context, a Alert) error {
	_, err := s.db.Collection(AlertsCollection).InsertOne(ctx, a)
	if err != nil && !mongo.IsDuplicateKeyError(err) {
		return fmt.Errorf("inserting alert %s: %w", a.ID, err)
	}
	return nil
}

// ListAlerts returns a page of a project's alerts, newest first.
func (s *Store) ListAlerts(ctx context.Context, org, project string, limit, offset int) ([]Alert, int64, error) {
	coll := s.db.Collection(AlertsCollection)
	f := bson.D{{Key: "organizationId", Value: org}, {Key: "projectId", Value: project}}
	total, err := coll.CountDocuments(ctx, f)
	if err != nil {
		return nil, 0, fmt.Errorf("counting alerts: %w", err)
	}
	cur, err := coll.Find(ctx, f, options.Find().SetSort(bson.D{{Key: "raisedAt", Value: -1}, {Key: "_id", Value: -1}}).SetSkip(int64(offset)).SetLimit(int64(limit)))
	if err != nil {
		return nil, 0, fmt.Errorf("listing alerts: %w", err)
	}
	out := []Alert{}
	if err := cur.All(ctx, &out); err != nil {
		return nil, 0, fmt.Errorf("reading alerts: %w", err)
	}
	return out, total, nil
}
