// Package jobstore keeps job records: one document per job with its status,
// attempts and the history of its transitions, each with its time.
package jobstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/odavl/sync/libs/mongodb"
	"github.com/odavl/sync/libs/rpc"
)

// Collection holds the job records.
const Collection = "jobs"

// Job statuses.
const (
	Waiting   = "WAITING"
	Active    = "ACTIVE"
	Completed = "COMPLETED"
	Failed    = "FAILED"
	Delayed   = "DELAYED"
	Paused    = "PAUSED"
	Cancelled = "CANCELLED"
)

// Job types.
const (
	InsightAnalysis  = "INSIGHT_ANALYSIS"
	AutopilotCycle   = "AUTOPILOT_CYCLE"
	GuardianTest     = "GUARDIAN_TEST"
	ReportGeneration = "REPORT_GENERATION"
	BulkInvitation   = "BULK_INVITATION"
	EmailSend        = "EMAIL_SEND"
	DataExport       = "DATA_EXPORT"
)

// Record is a stored job.
type Record struct {
	ID             string       `bson:"_id"`
	Type           string       `bson:"type"`
	Status         string       `bson:"status"`
	Priority       int          `bson:"priority"`
	OrganizationID string       `bson:"organizationId"`
	ProjectID      string       `bson:"projectId"`
	Progress       int          `bson:"progress"`
	Attempts       int          `bson:"attempts"`
	MaxAttempts    int          `bson:"maxAttempts"`
	Error          string       `bson:"error,omitempty"`
	ResultID       string       `bson:"resultId,omitempty"`
	CreatedAt      time.Time    `bson:"createdAt"`
	UpdatedAt      time.Time    `bson:"updatedAt"`
	History        []Transition `bson:"history"`
}

// Transition is one status change.
type Transition struct {
	Status string    `bson:"status"`
	At     time.Time `bson:"at"`
	Error  string    `bson:"error,omitempty"`
}

// Store reads and writes job records.
type Store struct{ coll *mongo.Collection }

// New returns a Store over db.
func New(db *mongo.Database) *Store { return &Store{coll: db.Collection(Collection)} }

// Indexes are the indexes of the job queries.
func Indexes() []mongodb.Index {
	return []mongodb.Index{
		{Collection: Collection, Name: "tenant_created", Keys: bson.D{{Key: "organizationId", Value: 1}, {Key: "projectId", Value: 1}, {Key: "createdAt", Value: -1}}},
		{Collection: Collection, Name: "status_updated", Keys: bson.D{{Key: "status", Value: 1}, {Key: "updatedAt", Value: 1}}},
	}
}

// Transit records that job j moved to status at time at, creating the record
// on its first transition. set holds extra fields to set.
func (s *Store) Transit(ctx context.Context, j Record, status string, at time.Time, errMsg string, set bson.D) error {
	set = append(set,
		bson.E{Key: "status", Value: status},
		bson.E{Key: "updatedAt", Value: at},
		bson.E{Key: "attempts", Value: j.Attempts},
	)
	if errMsg != "" {
		set = append(set, bson.E{Key: "error", Value: errMsg})
	}
	upd := bson.D{
		{Key: "$set", Value: set},
		{Key: "$setOnInsert", Value: bson.D{
			{Key: "type", Value: j.Type},
			{Key: "priority", Value: j.Priority},
			{Key: "organizationId", Value: j.OrganizationID},
			{Key: "projectId", Value: j.ProjectID},
			{Key: "maxAttempts", Value: j.MaxAttempts},
			{Key: "createdAt", Value: j.CreatedAt},
		}},
		{Key: "$push", Value: bson.D{{Key: "history", Value: Transition{Status: status, At: at, Error: errMsg}}}},
	}
	_, err := s.coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: j.ID}}, upd, options.UpdateOne().SetUpsert(true))
	if mongo.IsDuplicateKeyError(err) {
		// Another writer inserted it between our match and insert: now it matches.
		_, err = s.coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: j.ID}}, upd)
	}
	if err != nil {
		return fmt.Errorf("recording job %s %s: %w", j.ID, status, err)
	}
	return nil
}

// ErrNotFound is returned for an unknown job.
var ErrNotFound = errors.New("job not found")

// Get returns a job of a tenant.
func (s *Store) Get(ctx context.Context, org, project, id string) (Record, error) {
	var r Record
	err := s.coll.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&r)
	if errors.Is(err, mongo.ErrNoDocuments) || (err == nil && (r.OrganizationID != org || r.ProjectID != project)) {
		return Record{}, ErrNotFound
	}
	if err != nil {
		return Record{}, fmt.Errorf("reading job %s: %w", id, err)
	}
	return r, nil
}

// API renders a record as the API shows it.
func (r Record) API() rpc.Job {
	j := rpc.Job{
		ID: r.ID, Type: r.Type, Status: r.Status, Priority: r.Priority,
		OrganizationID: r.OrganizationID, ProjectID: r.ProjectID, Progress: r.Progress,
		Attempts: r.Attempts, MaxAttempts: r.MaxAttempts, Error: r.Error, ResultID: r.ResultID,
		CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt, History: []rpc.Transition{},
	}
	for _, t := range r.History {
		j.History = append(j.History, rpc.Transition{Status: t.Status, At: t.At, Error: t.Error})
	}
	return j
}
