// Package jobstore keeps job records: one document per job with its status,
// attempts, progress and the history of its transitions, each with its time.
// Writes go through a Writer, which batches them and collapses the
// transitions of one job into one write.
package jobstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/odavl/sync/libs/jobs"
	"github.com/odavl/sync/libs/mongodb"
	"github.com/odavl/sync/libs/rpc"
)

// Collection holds the job records.
const Collection = "jobs"

// Record is a stored job.
type Record struct {
	ID             string `bson:"_id"`
	Type           string `bson:"type"`
	Status         string `bson:"status"`
	Priority       int    `bson:"priority"`
	OrganizationID string `bson:"organizationId"`
	ProjectID      string `bson:"projectId"`
	Progress       int    `bson:"progress"`
	// Attempts counts runs over every generation (manual retries included).
	Attempts    int    `bson:"attempts"`
	MaxAttempts int    `bson:"maxAttempts"`
	Error       string `bson:"error,omitempty"`
	ResultID    string `bson:"resultId,omitempty"`
	// Payload and Output are JSON documents kept as text.
	Payload  string `bson:"payload,omitempty"`
	Output   string `bson:"output,omitempty"`
	ParentID string `bson:"parentId,omitempty"`
	// WaitingChildren are the unfinished children a DELAYED job waits for,
	// its worker given back (queue.Job.WaitForChildren).
	WaitingChildren []string `bson:"waitingChildren,omitempty"`
	// Generation counts manual retries: writes of an older generation are ignored.
	Generation int          `bson:"generation"`
	TimeoutMs  int64        `bson:"timeoutMs,omitempty"`
	RunAt      *time.Time   `bson:"runAt,omitempty"`
	CreatedAt  time.Time    `bson:"createdAt"`
	UpdatedAt  time.Time    `bson:"updatedAt"`
	StartedAt  *time.Time   `bson:"startedAt,omitempty"`
	FinishedAt *time.Time   `bson:"finishedAt,omitempty"`
	History    []Transition `bson:"history"`
}

// Transition is one status change.
type Transition struct {
	Status  string    `bson:"status"`
	At      time.Time `bson:"at"`
	Attempt int       `bson:"attempt,omitempty"`
	Error   string    `bson:"error,omitempty"`
}

// Store reads job records and makes the writes that are not transitions
// (manual retry, cleanup).
type Store struct{ coll *mongo.Collection }

// New returns a Store over db.
func New(db *mongo.Database) *Store { return &Store{coll: db.Collection(Collection)} }

// Coll is the records' collection.
func (s *Store) Coll() *mongo.Collection { return s.coll }

// Indexes are the indexes of the job queries.
func Indexes() []mongodb.Index {
	return []mongodb.Index{
		{Collection: Collection, Name: "tenant_created", Keys: bson.D{{Key: "organizationId", Value: 1}, {Key: "projectId", Value: 1}, {Key: "createdAt", Value: -1}}},
		{Collection: Collection, Name: "status_updated", Keys: bson.D{{Key: "status", Value: 1}, {Key: "updatedAt", Value: 1}}},
		// The list's status and type filters (and the counts by status and by type), newest first.
		{Collection: Collection, Name: "tenant_status_created", Keys: bson.D{{Key: "organizationId", Value: 1}, {Key: "projectId", Value: 1}, {Key: "status", Value: 1}, {Key: "createdAt", Value: -1}}},
		{Collection: Collection, Name: "tenant_type_created", Keys: bson.D{{Key: "organizationId", Value: 1}, {Key: "projectId", Value: 1}, {Key: "type", Value: 1}, {Key: "createdAt", Value: -1}}},
	}
}

// ErrNotFound is returned for an unknown job.
var ErrNotFound = errors.New("job not found")

// Get returns a job of a tenant.
func (s *Store) Get(ctx context.Context, org, project, id string) (Record, error) {
	r, err := s.GetAny(ctx, id)
	if err == nil && (r.OrganizationID != org || r.ProjectID != project) {
		return Record{}, ErrNotFound
	}
	return r, err
}

// ByIDs returns the stored records of ids, by id.
func (s *Store) ByIDs(ctx context.Context, ids []string) (map[string]Record, error) {
	out := make(map[string]Record, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	cur, err := s.coll.Find(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}},
		options.Find().SetProjection(bson.D{{Key: "payload", Value: 0}, {Key: "output", Value: 0}, {Key: "history", Value: 0}}))
	if err != nil {
		return nil, fmt.Errorf("reading jobs: %w", err)
	}
	var rs []Record
	if err := cur.All(ctx, &rs); err != nil {
		return nil, fmt.Errorf("reading jobs: %w", err)
	}
	for _, r := range rs {
		out[r.ID] = r
	}
	return out, nil
}

// GetAny returns a job whatever its tenant.
func (s *Store) GetAny(ctx context.Context, id string) (Record, error) {
	var r Record
	err := s.coll.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&r)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return Record{}, ErrNotFound
	}
	if err != nil {
		return Record{}, fmt.Errorf("reading job %s: %w", id, err)
	}
	return r, nil
}

// Query selects jobs of an organization.
type Query struct {
	OrganizationID string
	// ProjectID empty: every project of the organization.
	ProjectID     string
	Status, Type  string
	ParentID      string
	Limit, Offset int
	// CreatedFrom and CreatedTo select jobs created in [CreatedFrom,
	// CreatedTo) (nil: unbounded).
	CreatedFrom, CreatedTo *time.Time
}

// Created reports whether t is in the query's creation range.
func (q Query) Created(t time.Time) bool {
	return (q.CreatedFrom == nil || !t.Before(*q.CreatedFrom)) && (q.CreatedTo == nil || t.Before(*q.CreatedTo))
}

func (q Query) filter() bson.D {
	f := bson.D{{Key: "organizationId", Value: q.OrganizationID}}
	if q.ProjectID != "" {
		f = append(f, bson.E{Key: "projectId", Value: q.ProjectID})
	}
	if q.Status != "" {
		f = append(f, bson.E{Key: "status", Value: q.Status})
	}
	if q.Type != "" {
		f = append(f, bson.E{Key: "type", Value: q.Type})
	}
	if q.ParentID != "" {
		f = append(f, bson.E{Key: "parentId", Value: q.ParentID})
	}
	return mongodb.TimeRange(f, "createdAt", q.CreatedFrom, q.CreatedTo)
}

// List returns a page of jobs, newest first, and the count of all that match.
func (s *Store) List(ctx context.Context, q Query) ([]Record, int64, error) {
	f := q.filter()
	total, err := s.coll.CountDocuments(ctx, f)
	if err != nil {
		return nil, 0, fmt.Errorf("counting jobs: %w", err)
	}
	opts := options.Find().SetSort(bson.D{{Key: "createdAt", Value: -1}, {Key: "_id", Value: -1}}).SetSkip(int64(q.Offset))
	if q.Limit > 0 {
		opts.SetLimit(int64(q.Limit))
	}
	cur, err := s.coll.Find(ctx, f, opts)
	if err != nil {
		return nil, 0, fmt.Errorf("listing jobs: %w", err)
	}
	out := []Record{}
	if err := cur.All(ctx, &out); err != nil {
		return nil, 0, fmt.Errorf("reading jobs: %w", err)
	}
	return out, total, nil
}

// Counts counts the jobs of q (its status and type filters ignored) by
// status and by type: two pipelines of one accumulator each.
func (s *Store) Counts(ctx context.Context, q Query) (byStatus, byType map[string]int64, err error) {
	q.Status, q.Type = "", ""
	count := func(field string) (map[string]int64, error) {
		cur, err := s.coll.Aggregate(ctx, mongo.Pipeline{
			{{Key: "$match", Value: q.filter()}},
			{{Key: "$group", Value: bson.D{{Key: "_id", Value: "$" + field}, {Key: "n", Value: bson.D{{Key: "$sum", Value: 1}}}}}},
		})
		if err != nil {
			return nil, fmt.Errorf("counting jobs by %s: %w", field, err)
		}
		var rows []struct {
			ID string `bson:"_id"`
			N  int64  `bson:"n"`
		}
		if err := cur.All(ctx, &rows); err != nil {
			return nil, fmt.Errorf("counting jobs by %s: %w", field, err)
		}
		m := map[string]int64{}
		for _, r := range rows {
			m[r.ID] = r.N
		}
		return m, nil
	}
	if byStatus, err = count("status"); err != nil {
		return nil, nil, err
	}
	byType, err = count("type")
	return byStatus, byType, err
}

// tombstone turns the records that match f into tombstones: their ids are
// read, the records deleted at once and tombstones inserted in batches (the
// embedded store inserts thousands a second but updates a few hundred). A
// record written again between the delete and the insert (a late
// delivery) makes its tombstone a duplicate and is then turned into one in
// place.
func (s *Store) tombstone(ctx context.Context, f bson.D) (int64, error) {
	cur, err := s.coll.Find(ctx, f, options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}, {Key: "updatedAt", Value: 1}}))
	if err != nil {
		return 0, fmt.Errorf("clearing completed jobs: %w", err)
	}
	var found []struct {
		ID        string    `bson:"_id"`
		UpdatedAt time.Time `bson:"updatedAt"`
	}
	if err := cur.All(ctx, &found); err != nil {
		return 0, fmt.Errorf("clearing completed jobs: %w", err)
	}
	if len(found) == 0 {
		return 0, nil
	}
	// One delete (a filtered delete scans the collection in the embedded
	// store, so not one per chunk), of what was found: a job finished since
	// is newer than the newest found.
	last := found[0].UpdatedAt
	for _, r := range found {
		if r.UpdatedAt.After(last) {
			last = r.UpdatedAt
		}
	}
	del, err := s.coll.DeleteMany(ctx, append(slices.Clone(f), bson.E{Key: "updatedAt", Value: bson.D{{Key: "$lte", Value: last}}}))
	if err != nil {
		return 0, fmt.Errorf("clearing completed jobs: %w", err)
	}
	n := del.DeletedCount
	for i := 0; i < len(found); i += 100 {
		chunk := found[i:min(i+100, len(found))]
		stones := make([]any, len(chunk))
		for j, r := range chunk {
			stones[j] = bson.D{{Key: "_id", Value: r.ID}, {Key: "status", Value: jobs.Cleared}, {Key: "organizationId", Value: ""},
				{Key: "projectId", Value: ""}, {Key: "updatedAt", Value: r.UpdatedAt}}
		}
		_, err = s.coll.InsertMany(ctx, stones, options.InsertMany().SetOrdered(false))
		var bwe mongo.BulkWriteException
		if err != nil && !errors.As(err, &bwe) {
			return n, fmt.Errorf("leaving tombstones of cleared jobs: %w", err)
		}
		for _, we := range bwe.WriteErrors {
			if we.Code != 11000 {
				return n, fmt.Errorf("leaving tombstones of cleared jobs: %w", we)
			}
			// Written again meanwhile: that record becomes the tombstone.
			if _, err := s.coll.ReplaceOne(ctx, bson.D{{Key: "_id", Value: chunk[we.Index].ID}, {Key: "status", Value: jobs.Completed}}, stones[we.Index]); err != nil {
				return n, fmt.Errorf("leaving a tombstone of job %s: %w", chunk[we.Index].ID, err)
			}
		}
	}
	return n, nil
}

// Remember is how long after it finished a cleared job leaves a tombstone:
// far longer than a late delivery of its message takes to come and run (an
// ack lost or late is redelivered after the ack wait, at most MaxDeliver
// times). Turning records into tombstones costs several times a delete on
// the embedded store (~300/s against ~1.8k/s), so only the jobs of the last
// hour pay it.
const Remember = time.Hour

// ClearCompleted deletes the COMPLETED jobs last updated before cutoff, of
// one organization (and project) or, with an empty q.OrganizationID, of all,
// and returns how many went.
//
// A job that finished less than Remember ago may still have a delivery of
// its message under way (its ack late or lost, or a redelivery racing the
// first run): its record is turned into a tombstone, of status Cleared with
// no tenant, rather than deleted. A redelivery that finds it does not run
// the job again, and the late write of a finished record collides with its
// _id (insertFinal keeps the record that stands), so a cleared job never
// comes back. Tombstones are deleted once Remember has passed.
func (s *Store) ClearCompleted(ctx context.Context, q Query, cutoff time.Time) (int64, error) {
	f := bson.D{{Key: "status", Value: jobs.Completed}}
	if q.OrganizationID != "" {
		f = append(f, bson.E{Key: "organizationId", Value: q.OrganizationID})
		if q.ProjectID != "" {
			f = append(f, bson.E{Key: "projectId", Value: q.ProjectID})
		}
	}
	if q.Type != "" {
		f = append(f, bson.E{Key: "type", Value: q.Type})
	}
	recent := time.Now().Add(-Remember)
	old := append(slices.Clone(f), bson.E{Key: "updatedAt", Value: bson.D{{Key: "$lt", Value: minTime(cutoff, recent)}}})
	res, err := s.coll.DeleteMany(ctx, old)
	if err != nil {
		return 0, fmt.Errorf("clearing completed jobs: %w", err)
	}
	n := res.DeletedCount
	if cutoff.After(recent) {
		lately := append(f, bson.E{Key: "updatedAt", Value: bson.D{{Key: "$gte", Value: recent}, {Key: "$lt", Value: cutoff}}})
		m, err := s.tombstone(ctx, lately)
		n += m
		if err != nil {
			return n, err
		}
	}
	if _, err := s.coll.DeleteMany(ctx, bson.D{{Key: "status", Value: jobs.Cleared}, {Key: "updatedAt", Value: bson.D{{Key: "$lt", Value: recent}}}}); err != nil {
		return n, fmt.Errorf("deleting tombstones of cleared jobs: %w", err)
	}
	return n, nil
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// API renders a record as the API shows it.
func (r Record) API() rpc.Job {
	j := rpc.Job{
		ID: r.ID, Type: r.Type, Status: r.Status, Priority: r.Priority,
		OrganizationID: r.OrganizationID, ProjectID: r.ProjectID, Progress: r.Progress,
		Attempts: r.Attempts, MaxAttempts: r.MaxAttempts, Error: r.Error, ResultID: r.ResultID,
		CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt, RunAt: r.RunAt, History: []rpc.Transition{},
		ParentID: r.ParentID, StartedAt: r.StartedAt, FinishedAt: r.FinishedAt, WaitingChildren: r.WaitingChildren,
	}
	if r.Payload != "" && json.Valid([]byte(r.Payload)) {
		j.Payload = json.RawMessage(r.Payload)
	}
	if r.Output != "" && json.Valid([]byte(r.Output)) {
		j.Output = json.RawMessage(r.Output)
	}
	hist := slices.Clone(r.History)
	slices.SortStableFunc(hist, func(a, b Transition) int { return a.At.Compare(b.At) })
	for _, t := range hist {
		j.History = append(j.History, rpc.Transition{Status: t.Status, At: t.At, Error: t.Error, Attempt: t.Attempt})
	}
	return j
}
