// Package uploads accepts validated uploads: it gives each one its id from
// the tenant, product and idempotency key and publishes the received event,
// answering only once JetStream has stored it. The event is also the
// upload's idempotency record: it is published on a subject of its own, only
// if that subject holds nothing yet, so one JetStream write makes an upload
// durable and remembered; a retry reads it back and gets the first answer (a
// different payload under the same key a conflict).
package uploads

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/odavl/sync/libs/bus"
	"github.com/odavl/sync/libs/events"
)

// Source is the CloudEvents source of received events.
const Source = events.SourceIngest

// ErrConflict is returned when a key was used before with another payload.
var ErrConflict = errors.New("idempotency key reused with a different payload")

// Record is what the stream remembers of an accepted upload: its received
// event's data, without the payload.
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
	js     jetstream.JetStream
	stream jetstream.Stream
	ttl    time.Duration
	now    func() time.Time
	legacy jetstream.KeyValue // the records of an older version, while it holds some
}

// LegacyBucket is the KV bucket where versions before 2026-12-04 kept the
// idempotency records (one per upload, kept IDEMPOTENCY_TTL).
const LegacyBucket = "sync_uploads"

// Open prepares to accept uploads into the SYNC stream, remembering each
// upload's key for ttl. The stream must keep events at least that long: a
// received event is its upload's idempotency record.
func Open(ctx context.Context, js jetstream.JetStream, ttl time.Duration) (*Uploads, error) {
	st, err := js.Stream(ctx, events.StreamSync)
	if err != nil {
		return nil, fmt.Errorf("opening stream %s: %w", events.StreamSync, err)
	}
	if age := st.CachedInfo().Config.MaxAge; age > 0 && age < ttl {
		return nil, fmt.Errorf("IDEMPOTENCY_TTL %s is longer than stream %s keeps events (max age %s): an upload's received event is its idempotency record; raise the stream's max age or lower IDEMPOTENCY_TTL", ttl, events.StreamSync, age)
	}
	u := &Uploads{js: js, stream: st, ttl: ttl, now: time.Now}
	// Uploads accepted by an older version keep their idempotency rules
	// until their records expire: their keys are looked up there first.
	if kv, err := js.KeyValue(ctx, LegacyBucket); err == nil {
		if status, err := kv.Status(ctx); err == nil && status.Values() > 0 {
			u.legacy = kv
		}
	} else if !errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, fmt.Errorf("opening bucket %s: %w", LegacyBucket, err)
	}
	return u, nil
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
	// PayloadHash is Hash(Canonical) when the caller has it already.
	PayloadHash string
}

// Accept makes u durable and returns its receipt, in one JetStream write:
// the received event is published on the upload's own subject, expecting
// it to hold nothing yet. When it holds the upload already (a retry, or
// concurrent uploads with one key: the server lets one in), the message on
// it answers (the upload's received event, or a manual retry's, which
// repeats its data): the same payload gets the first receipt (Replay
// true), another payload is ErrConflict. After ttl the key is free again
// and the upload is published anew, expecting the old message to be the
// last one on the subject.
func (u *Uploads) Accept(ctx context.Context, up Upload) (Receipt, error) {
	id := UploadID(up.OrganizationID, up.ProjectID, up.Product, up.IdempotencyKey)
	subject := events.ReceivedSubject(up.OrganizationID, up.ProjectID, up.Product, id)
	hash := up.PayloadHash
	if hash == "" {
		hash = Hash(up.Canonical)
	}
	if u.legacy != nil {
		if rc, ok, err := u.legacyReplay(ctx, id, hash); ok || err != nil {
			return rc, err
		}
	}
	var expect uint64 // the last sequence on subject the publish expects: 0, nothing
	for try := range tries {
		if try > 0 && expect == 0 {
			// The subject held a message the read did not find yet (a
			// publish of it still being applied on a cluster), or one
			// purged since: give the stream a moment.
			select {
			case <-time.After(time.Duration(try) * 20 * time.Millisecond):
			case <-ctx.Done():
				return Receipt{}, ctx.Err()
			}
		}
		at := u.now().UTC().Truncate(time.Millisecond)
		ack, err := u.publish(ctx, up, subject, id, hash, at, expect)
		if err == nil && !ack.Duplicate {
			return receipt(id, at, false), nil
		}
		if err != nil && !wrongLastSequence(err) {
			return Receipt{}, err
		}
		first, seq, err := u.read(ctx, subject)
		if errors.Is(err, ErrUnknown) {
			expect = 0
			continue
		}
		if err != nil {
			return Receipt{}, err
		}
		if u.now().Sub(first.ReceivedAt) > u.ttl {
			expect = seq // forgotten: the key starts afresh
			continue
		}
		if first.PayloadHash != hash {
			return Receipt{}, fmt.Errorf("%w: upload %s", ErrConflict, id)
		}
		return receipt(id, first.ReceivedAt, true), nil
	}
	return Receipt{}, fmt.Errorf("recording upload %s: its subject answered neither a publish nor a read in %d tries", id, tries)
}

// tries bounds the publish-then-read rounds of one Accept.
const tries = 5

// legacyReplay answers an upload whose key an older version recorded (and
// whose event it published): ok is false when it did not.
func (u *Uploads) legacyReplay(ctx context.Context, id, hash string) (Receipt, bool, error) {
	e, err := u.legacy.Get(ctx, id)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Receipt{}, false, nil
	}
	if err != nil {
		return Receipt{}, false, fmt.Errorf("reading upload record %s: %w", id, err)
	}
	var old struct {
		PayloadHash string    `json:"payloadHash"`
		ReceivedAt  time.Time `json:"receivedAt"`
		Published   bool      `json:"published"`
	}
	if err := json.Unmarshal(e.Value(), &old); err != nil || !old.Published {
		return Receipt{}, false, nil // not known to be published: accepted anew
	}
	if old.PayloadHash != hash {
		return Receipt{}, false, fmt.Errorf("%w: upload %s", ErrConflict, id)
	}
	return receipt(id, old.ReceivedAt, true), true, nil
}

func receipt(id string, at time.Time, replay bool) Receipt {
	return Receipt{
		EventID: id, JobID: id, UploadID: id, Status: "queued", StatusURL: "/api/v1/sync/jobs/" + id,
		ReceivedAt: at, Replay: replay,
	}
}

// errDuplicateInProcess is the error code of a publish refused on a
// cluster while another with its message id is being applied.
const errDuplicateInProcess jetstream.ErrorCode = 10158

// wrongLastSequence reports whether a publish was refused because its
// subject holds a message already: its last sequence was not the expected
// one (10164 on a replicated stream), or, on a cluster, a publish of the
// same upload is being applied.
func wrongLastSequence(err error) bool {
	var ae *jetstream.APIError
	return errors.As(err, &ae) && (ae.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		ae.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant || ae.ErrorCode == errDuplicateInProcess)
}

func (u *Uploads) publish(ctx context.Context, up Upload, subject, id, hash string, at time.Time, expect uint64) (*jetstream.PubAck, error) {
	// The event is copied into the connection's buffer by the publish:
	// its bytes are reused.
	bp := envelopes.Get().(*[]byte)
	defer envelopes.Put(bp)
	b, err := encodeReceived((*bp)[:0], up, id, hash, at)
	if err != nil {
		return nil, err
	}
	*bp = b
	return bus.PublishEncoded(ctx, u.js, subject, id, events.ReceivedType(up.Product), b, jetstream.WithExpectLastSequencePerSubject(expect))
}

// envelopes are the buffers received events are encoded into.
var envelopes = sync.Pool{New: func() any { return new([]byte) }}

// encodeReceived appends the JSON of an upload's received event to dst:
// the bytes encoding/json makes of the events.Received event (field by
// field, in its order), written directly, with the canonical payload
// (compact JSON already) copied in rather than checked and copied twice
// more by encoding/json.
func encodeReceived(dst []byte, up Upload, id, hash string, at time.Time) ([]byte, error) {
	if len(up.Canonical) == 0 {
		return nil, fmt.Errorf("encoding event %s: no payload", id)
	}
	typ := events.ReceivedType(up.Product)
	if n := len(up.Canonical) + 1024; cap(dst)-len(dst) < n {
		dst = slices.Grow(dst, n)
	}
	b := append(dst, `{"specversion":`...)
	b = appendJSONString(b, events.SpecVersion)
	b = append(b, `,"id":`...)
	b = appendJSONString(b, id)
	b = append(b, `,"source":`...)
	b = appendJSONString(b, Source)
	b = append(b, `,"type":`...)
	b = appendJSONString(b, typ)
	if id != "" {
		b = append(b, `,"subject":`...)
		b = appendJSONString(b, id)
	}
	b = append(b, `,"time":"`...)
	b = at.UTC().Truncate(time.Millisecond).AppendFormat(b, events.TimeLayout)
	b = append(b, `","datacontenttype":"application/json","dataschema":`...)
	b = appendJSONString(b, events.DataSchema(typ))
	if up.OrganizationID != "" {
		b = append(b, `,"organizationid":`...)
		b = appendJSONString(b, up.OrganizationID)
	}
	if up.ProjectID != "" {
		b = append(b, `,"projectid":`...)
		b = appendJSONString(b, up.ProjectID)
	}
	b = append(b, `,"data":{"uploadId":`...)
	b = appendJSONString(b, id)
	b = append(b, `,"organizationId":`...)
	b = appendJSONString(b, up.OrganizationID)
	b = append(b, `,"projectId":`...)
	b = appendJSONString(b, up.ProjectID)
	b = append(b, `,"product":`...)
	b = appendJSONString(b, string(up.Product))
	b = append(b, `,"idempotencyKey":`...)
	b = appendJSONString(b, up.IdempotencyKey)
	b = append(b, `,"payloadHash":`...)
	b = appendJSONString(b, hash)
	b = append(b, `,"keyId":`...)
	b = appendJSONString(b, up.KeyID)
	b = append(b, `,"receivedAt":"`...)
	b, err := at.AppendText(b)
	if err != nil {
		return nil, fmt.Errorf("encoding event %s: %w", id, err)
	}
	b = append(b, `","payload":`...)
	b = append(b, up.Canonical...)
	return append(b, '}', '}'), nil
}

// appendJSONString appends s as json.Marshal writes it.
func appendJSONString(dst []byte, s string) []byte {
	if !plainString(s, true) {
		q, _ := json.Marshal(s)
		return append(dst, q...)
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}

// plainString reports whether encoding/json writes s as it is, quoted:
// printable ASCII but for " and \\ (and, escaping HTML, <, > and &).
func plainString(s string, html bool) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || (html && (c == '<' || c == '>' || c == '&')) {
			return false
		}
	}
	return true
}

// AppendJSON appends the receipt as an encoding/json Encoder that does
// not escape HTML writes it (the gateway's answers), newline included,
// without its reflection; ok is false when it does not know how (a string
// to escape, a time out of range), and appends nothing.
func (r Receipt) AppendJSON(dst []byte) (_ []byte, ok bool) {
	for _, s := range []string{r.EventID, r.JobID, r.UploadID, r.Status, r.StatusURL} {
		if !plainString(s, false) {
			return dst, false
		}
	}
	n := len(dst)
	dst = append(dst, `{"eventId":"`...)
	dst = append(dst, r.EventID...)
	dst = append(dst, `","jobId":"`...)
	dst = append(dst, r.JobID...)
	dst = append(dst, `","uploadId":"`...)
	dst = append(dst, r.UploadID...)
	dst = append(dst, `","status":"`...)
	dst = append(dst, r.Status...)
	dst = append(dst, `","statusUrl":"`...)
	dst = append(dst, r.StatusURL...)
	dst = append(dst, `","receivedAt":"`...)
	b, err := r.ReceivedAt.AppendText(dst)
	if err != nil {
		return dst[:n], false
	}
	dst = append(b, `","replay":`...)
	dst = strconv.AppendBool(dst, r.Replay)
	return append(dst, '}', '\n'), true
}

// ErrUnknown is returned by Lookup for an upload that was never accepted.
var ErrUnknown = errors.New("unknown upload")

// Lookup returns the record of an upload accepted for the tenant.
func (u *Uploads) Lookup(ctx context.Context, org, project, id string) (Record, error) {
	if !events.ValidID(id) || !events.ValidToken(org) || !events.ValidToken(project) {
		return Record{}, ErrUnknown
	}
	for _, p := range events.Products {
		r, _, err := u.read(ctx, events.ReceivedSubject(org, project, p, id))
		if !errors.Is(err, ErrUnknown) {
			return r, err
		}
	}
	return Record{}, ErrUnknown
}

// read returns the record an upload's subject holds and the sequence of
// its last message (a manual retry publishes the upload again there, with
// the same record).
func (u *Uploads) read(ctx context.Context, subject string) (Record, uint64, error) {
	m, err := u.stream.GetLastMsgForSubject(ctx, subject)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return Record{}, 0, ErrUnknown
	}
	if err != nil {
		return Record{}, 0, fmt.Errorf("reading upload record %s: %w", subject, err)
	}
	var ev struct {
		Data Record `json:"data"`
	}
	if err := json.Unmarshal(m.Data, &ev); err != nil {
		return Record{}, 0, fmt.Errorf("decoding upload record %s: %w", subject, err)
	}
	return ev.Data, m.Sequence, nil
}
