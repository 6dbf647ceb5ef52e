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
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/odavl/sync/libs/bus"
	"github.com/odavl/sync/libs/events"
)

// Bucket is the JetStream KV bucket of idempotency records.
const Bucket = "sync_uploads"

// Source is the CloudEvents source of received events.
const Source = events.SourceIngest

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
	// Published is set once JetStream has stored the received event, so a
	// retry after the stream's dedupe window does not publish it again.
	Published bool `json:"published,omitempty"`
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
	js    jetstream.JetStream
	kv    jetstream.KeyValue
	now   func() time.Time
	marks sync.WaitGroup
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
// payload returns the first receipt (Replay true); the same key with another
// payload is ErrConflict. Only one of concurrent uploads with one key creates
// the record (a KV create is atomic); the others are replays.
//
// A replay publishes the event again (under the same id, which JetStream
// drops inside its dedupe window) only while the record is not marked
// published: that closes the window where the record was written but the
// first publish was lost, without a second event long after the window.
func (u *Uploads) Accept(ctx context.Context, up Upload) (Receipt, error) {
	id := UploadID(up.OrganizationID, up.ProjectID, up.Product, up.IdempotencyKey)
	rec := Record{UploadID: id, OrganizationID: up.OrganizationID, ProjectID: up.ProjectID, Product: up.Product, PayloadHash: Hash(up.Canonical), ReceivedAt: u.now().UTC().Truncate(time.Millisecond)}
	b, _ := json.Marshal(rec)
	replay := false
	rev, err := u.kv.Create(ctx, id, b)
	if err != nil {
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return Receipt{}, fmt.Errorf("recording upload %s: %w", id, err)
		}
		first, frev, err := u.lookup(ctx, id)
		if err != nil {
			return Receipt{}, err
		}
		if first.PayloadHash != rec.PayloadHash {
			return Receipt{}, fmt.Errorf("%w: upload %s", ErrConflict, id)
		}
		rec, rev, replay = first, frev, true
	}
	if !rec.Published {
		if err := u.publish(ctx, up, rec); err != nil {
			if !replay {
				// Not accepted: forget the record so the client's retry starts afresh.
				_ = u.kv.Delete(context.WithoutCancel(ctx), id, jetstream.LastRevision(rev))
			}
			return Receipt{}, err
		}
		u.markPublished(rec, rev)
	}
	return Receipt{
		EventID: id, JobID: id, UploadID: id, Status: "queued", StatusURL: "/api/v1/sync/jobs/" + id,
		ReceivedAt: rec.ReceivedAt, Replay: replay,
	}, nil
}

func (u *Uploads) publish(ctx context.Context, up Upload, rec Record) error {
	ev, err := events.New(rec.UploadID, Source, events.ReceivedType(up.Product), rec.ReceivedAt, up.OrganizationID, up.ProjectID, events.Received{
		UploadID: rec.UploadID, OrganizationID: up.OrganizationID, ProjectID: up.ProjectID, Product: up.Product,
		IdempotencyKey: up.IdempotencyKey, PayloadHash: rec.PayloadHash, KeyID: up.KeyID, ReceivedAt: rec.ReceivedAt,
		Payload: up.Canonical,
	})
	if err != nil {
		return err
	}
	ev.Subject = rec.UploadID
	_, err = bus.Publish(ctx, u.js, events.ReceivedSubject(up.OrganizationID, up.ProjectID, up.Product), ev)
	return err
}

// markPublished records, off the request's path, that the event is stored.
// Losing the mark (a crash, a concurrent mark) costs at most one harmless
// re-publish by a later replay.
func (u *Uploads) markPublished(rec Record, rev uint64) {
	rec.Published = true
	b, _ := json.Marshal(rec)
	u.marks.Add(1)
	go func() {
		defer u.marks.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, _ = u.kv.Update(ctx, rec.UploadID, b, rev)
	}()
}

// Wait waits for the published marks in flight (at shutdown, and in tests).
func (u *Uploads) Wait() { u.marks.Wait() }

// ErrUnknown is returned by Lookup for an upload that was never accepted.
var ErrUnknown = errors.New("unknown upload")

// Lookup returns the record of an accepted upload.
func (u *Uploads) Lookup(ctx context.Context, id string) (Record, error) {
	r, _, err := u.lookup(ctx, id)
	return r, err
}

func (u *Uploads) lookup(ctx context.Context, id string) (Record, uint64, error) {
	if !events.ValidID(id) {
		return Record{}, 0, ErrUnknown
	}
	e, err := u.kv.Get(ctx, id)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Record{}, 0, ErrUnknown
	}
	if err != nil {
		return Record{}, 0, fmt.Errorf("reading upload record %s: %w", id, err)
	}
	var r Record
	if err := json.Unmarshal(e.Value(), &r); err != nil {
		return Record{}, 0, fmt.Errorf("decoding upload record %s: %w", id, err)
	}
	return r, e.Revision(), nil
}
