// Package uploads accepts validated uploads: it gives each one its id from
// the tenant, product and idempotency key, remembers the payload's hash so a
// retry gets the first answer (and a different payload under the same key a
// conflict), and publishes the received event, answering only once JetStream
// has stored it.
package uploads

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/odavl/sync/libs/bus"
	"github.com/odavl/sync/libs/events"
)

// Bucket is the JetStream KV bucket of idempotency records.
const Bucket = "sync_uploads"

// Source is the CloudEvents source of received events.
const Source = "/odavl-sync/ingest"

// ErrConflict is returned when a key was used before with another payload.
var ErrConflict = errors.New("idempotency key reused with a different payload")

// Record is what the bucket remembers of an accepted upload.
type Record struct {
	UploadID       string         `json:"uploadId"`
	OrganizationID string         `json:"organizationId"`
	ProjectID      string         `json:"projectId"`
	Product        events.Product `json:"product"`
	PayloadHash    string         `json:"payloadHash"`
	ReceivedAt     time.Time      `json:"receivedAt"`
}

// Receipt is the answer to an accepted upload.
type Receipt struct {
	EventID    string    `json:"eventId"`
	JobID      string    `json:"jobId"`
	UploadID   string    `json:"uploadId"`
	Status     string    `json:"status"`
	StatusURL  string    `json:"statusUrl"`
	ReceivedAt time.Time `json:"receivedAt"`
	Replay     bool      `json:"replay"`
}

// Uploads accepts uploads.
type Uploads struct {
	js  jetstream.JetStream
	kv  jetstream.KeyValue
	now func() time.Time
}

// Open creates or opens the idempotency bucket, keeping records for ttl.
func Open(ctx context.Context, js jetstream.JetStream, ttl time.Duration, replicas int) (*Uploads, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: Bucket, Description: "idempotency records of accepted uploads",
		TTL: ttl, Storage: jetstream.FileStorage, Replicas: max(replicas, 1), History: 1,
	})
	if err != nil {
		return nil, fmt.Errorf("opening bucket %s: %w", Bucket, err)
	}
	return &Uploads{js: js, kv: kv, now: time.Now}, nil
}

// UploadID derives an upload's id from its tenant, product and idempotency key.
func UploadID(org, project string, p events.Product, key string) string {
	h := sha256.Sum256([]byte(org + "\x00" + project + "\x00" + string(p) + "\x00" + key))
	return "up_" + hex.EncodeToString(h[:16])
}

// Hash is the hash of a canonical payload.
func Hash(canonical []byte) string {
	h := sha256.Sum256(canonical)
	return hex.EncodeToString(h[:])
}

// Upload is one validated upload to accept.
type Upload struct {
	OrganizationID, ProjectID string
	Product                   events.Product
	KeyID                     string
	IdempotencyKey            string
	// Canonical is the payload re-encoded canonically (sorted keys, no spaces).
	Canonical []byte
}

// Accept makes u durable and returns its receipt. The same key with the same
// payload returns the first receipt (Replay true) and publishes the event
// again under the same id, which is harmless — JetStream drops it inside its
// dedupe window and the consumers are idempotent after it — and closes the
// window where the record was written but the publish was lost. The same key
// with another payload is ErrConflict.
func (u *Uploads) Accept(ctx context.Context, up Upload) (Receipt, error) {
	id := UploadID(up.OrganizationID, up.ProjectID, up.Product, up.IdempotencyKey)
	rec := Record{UploadID: id, OrganizationID: up.OrganizationID, ProjectID: up.ProjectID, Product: up.Product, PayloadHash: Hash(up.Canonical), ReceivedAt: u.now().UTC().Truncate(time.Millisecond)}
	b, _ := json.Marshal(rec)
	replay := false
	if _, err := u.kv.Create(ctx, id, b); err != nil {
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return Receipt{}, fmt.Errorf("recording upload %s: %w", id, err)
		}
		first, err := u.Lookup(ctx, id)
		if err != nil {
			return Receipt{}, err
		}
		if first.PayloadHash != rec.PayloadHash {
			return Receipt{}, fmt.Errorf("%w: upload %s", ErrConflict, id)
		}
		rec, replay = first, true
	}
	ev, err := events.New(id, Source, events.ReceivedType(up.Product), rec.ReceivedAt, up.OrganizationID, up.ProjectID, events.Received{
		UploadID: id, OrganizationID: up.OrganizationID, ProjectID: up.ProjectID, Product: up.Product,
		IdempotencyKey: up.IdempotencyKey, PayloadHash: rec.PayloadHash, KeyID: up.KeyID, ReceivedAt: rec.ReceivedAt,
		Payload: up.Canonical,
	})
	if err != nil {
		return Receipt{}, err
	}
	if _, err := bus.Publish(ctx, u.js, events.ReceivedSubject(up.OrganizationID, up.ProjectID, up.Product), ev); err != nil {
		if !replay {
			// Not accepted: forget the record so the client's retry starts afresh.
			_ = u.kv.Delete(context.WithoutCancel(ctx), id)
		}
		return Receipt{}, err
	}
	return Receipt{
		EventID: id, JobID: id, UploadID: id, Status: "queued", StatusURL: "/api/v1/sync/jobs/" + id,
		ReceivedAt: rec.ReceivedAt, Replay: replay,
	}, nil
}

// ErrUnknown is returned by Lookup for an upload that was never accepted.
var ErrUnknown = errors.New("unknown upload")

// Lookup returns the record of an accepted upload.
func (u *Uploads) Lookup(ctx context.Context, id string) (Record, error) {
	e, err := u.kv.Get(ctx, id)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Record{}, ErrUnknown
	}
	if err != nil {
		return Record{}, fmt.Errorf("reading upload record %s: %w", id, err)
	}
	var r Record
	if err := json.Unmarshal(e.Value(), &r); err != nil {
		return Record{}, fmt.Errorf("decoding upload record %s: %w", id, err)
	}
	return r, nil
}
