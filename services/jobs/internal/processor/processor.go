// Package processor turns received uploads into result documents: it records
// the upload's job, stores the result (idempotently, keyed by the upload id),
// raises the critical alert of an Insight upload, and publishes the processed
// event. Every step is safe to repeat, so a redelivery has exactly-once effect.
package processor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.opentelemetry.io/otel/attribute"

	"github.com/odavl/sync/libs/bus"
	"github.com/odavl/sync/libs/events"
	"github.com/odavl/sync/libs/jobs"
	"github.com/odavl/sync/libs/tracing"
	"github.com/odavl/sync/services/jobs/internal/jobstore"
	"github.com/odavl/sync/services/jobs/internal/queue"
	"github.com/odavl/sync/services/jobs/internal/results"
)

// Source is the CloudEvents source of the events this package publishes.
const Source = events.SourceJobs

// Processor handles received events.
type Processor struct {
	log     *slog.Logger
	js      jetstream.JetStream
	results *results.Store
	insert  func(context.Context, results.Result) error
	alert   func(context.Context, results.Alert) error
	// both stores a result and then its alert, together (the inserter's
	// batches); nil: insert, then alert.
	both    func(context.Context, results.Result, results.Alert) error
	jobs    *jobstore.Store
	writer  *jobstore.Writer
	metrics *queue.Metrics
	now     func() time.Time
}

// UseMetrics records the processing of uploads in the queue's figures,
// by job type, as any job's runs.
func (p *Processor) UseMetrics(m *queue.Metrics) { p.metrics = m }

// New returns a Processor. Its job records go through w, the queue's
// record writer, and its lifecycle events are the queue's.
func New(log *slog.Logger, js jetstream.JetStream, rs *results.Store, jobs *jobstore.Store, w *jobstore.Writer, now func() time.Time) *Processor {
	return &Processor{log: log, js: js, results: rs, insert: rs.Insert, alert: rs.InsertAlert, jobs: jobs, writer: w, now: now}
}

// UseInserter makes the processor's result and alert inserts join in's
// batches.
func (p *Processor) UseInserter(in *results.Inserter) {
	p.insert, p.alert, p.both = in.Insert, in.InsertAlert, in.InsertWithAlert
}

// UseInsert makes the processor insert result documents with f (the
// inserter's batches or the store itself, wrapped: tests use it to make the
// store fail for a while).
func (p *Processor) UseInsert(f func(context.Context, results.Result) error) {
	p.insert, p.both = f, nil
}

// transit records a transition of a sync job and publishes its lifecycle
// event; a final one is durable before it returns.
func (p *Processor) transit(job jobstore.Record, status, previous string, attempt int, errMsg, resultID string) error {
	now := p.now().UTC()
	final := jobs.Terminal(status)
	ch := p.writer.Add(jobstore.Change{Base: job, Create: status == jobs.Active && attempt == 1, Status: status, At: now,
		Attempt: attempt, Error: errMsg, ResultID: resultID, Durable: final})
	progress := 0
	if status == jobs.Completed {
		progress = 100
	}
	wait := queue.Emit(p.js, events.JobStatusChanged{JobID: job.ID, Type: job.Type, OrganizationID: job.OrganizationID, ProjectID: job.ProjectID,
		Generation: job.Generation, Status: status, Previous: previous, Progress: progress, Attempt: attempt, Error: errMsg, At: now})
	if !final {
		go func() {
			if err := wait(); err != nil {
				p.log.Error("job event lost", "job", job.ID, "err", err)
			}
		}()
		return nil
	}
	if err := <-ch; err != nil {
		return err
	}
	return wait()
}

// Handle is the bus.Handler of received events.
func (p *Processor) Handle(ctx context.Context, d bus.Delivery) error {
	var rc events.Received
	if err := d.Event.DataAs(&rc); err != nil {
		return bus.Permanent(err)
	}
	if !rc.Product.Valid() || rc.UploadID == "" {
		return bus.Permanent(fmt.Errorf("received event %s: bad product %q or empty upload id", d.Event.ID, rc.Product))
	}
	job := jobstore.Record{
		ID: rc.UploadID, Type: jobs.ForProduct(rc.Product), Priority: 5,
		OrganizationID: rc.OrganizationID, ProjectID: rc.ProjectID, Generation: rc.Generation,
		MaxAttempts: d.MaxAttempts, CreatedAt: rc.ReceivedAt, History: []jobstore.Transition{},
	}
	if d.Attempt > 1 {
		// The previous delivery may have finished and crashed before its ack
		// (or acked late); its record may have been cleared since.
		if r, ok, err := p.writer.Get(ctx, p.jobs, job.ID); err == nil && ok && r.Generation == job.Generation && (r.Status == jobs.Completed || r.Status == jobs.Cleared) {
			return p.publishProcessed(ctx, rc, job, r.ResultID)
		}
	}
	attempt := rc.BaseAttempt + d.Attempt
	_ = p.transit(job, jobs.Active, "", attempt, "", "")
	started := time.Now()
	p.metrics.Started(job.Type)
	err := p.process(ctx, rc, job, attempt)
	if err == nil {
		p.metrics.ObserveRun(job.Type, queue.OutcomeCompleted, time.Since(started))
		return nil
	}
	final := d.Last() || bus.IsPermanent(err)
	p.metrics.ObserveRun(job.Type, map[bool]string{true: queue.OutcomeFailed, false: queue.OutcomeRetried}[final], time.Since(started))
	if final {
		// The failed record keeps the received upload, so that it can be
		// retried by hand (Retry).
		failed := job
		if b, merr := json.Marshal(rc); merr == nil {
			failed.Payload = string(b)
		}
		if ferr := p.transit(failed, jobs.Failed, jobs.Active, attempt, err.Error(), ""); ferr != nil {
			p.log.Error("recording failed job", "job", job.ID, "err", ferr)
		}
	} else {
		_ = p.transit(job, jobs.Delayed, jobs.Active, attempt, err.Error(), "")
	}
	return err
}

// Retry processes a FAILED upload again as its next generation: the
// received upload its failed record keeps is published again under a new
// event id, after the record of the retry is written (WAITING).
func (p *Processor) Retry(ctx context.Context, r jobstore.Record) (jobstore.Record, error) {
	switch r.Status {
	case jobs.Failed:
	case jobs.Cancelled:
		return r, fmt.Errorf("%w: a cancelled upload is not kept; upload it again", queue.ErrNotRetryable)
	default:
		return r, fmt.Errorf("%w: it is %s", queue.ErrNotRetryable, r.Status)
	}
	var rc events.Received
	if r.Payload == "" || json.Unmarshal([]byte(r.Payload), &rc) != nil || rc.UploadID != r.ID {
		return r, fmt.Errorf("%w: the record of upload %s does not keep the upload (it failed before this version); upload it again", queue.ErrNotRetryable, r.ID)
	}
	rc.Generation, rc.BaseAttempt = r.Generation+1, r.Attempts
	now := p.now().UTC()
	next := r
	next.Generation = rc.Generation
	next.Error, next.Progress, next.FinishedAt, next.Payload = "", 0, nil, ""
	if err := <-p.writer.Add(jobstore.Change{Base: next, Status: jobs.Waiting, At: now, Durable: true}); err != nil {
		return r, err
	}
	subject := events.ReceivedSubject(rc.OrganizationID, rc.ProjectID, rc.Product, rc.UploadID)
	ev, err := events.New(fmt.Sprintf("%s-retry-%d", rc.UploadID, rc.Generation), Source, events.ReceivedType(rc.Product), now, rc.OrganizationID, rc.ProjectID, rc)
	if err != nil {
		return r, err
	}
	ev.Subject = rc.UploadID
	if _, err := bus.Publish(ctx, p.js, subject, ev); err != nil {
		return r, fmt.Errorf("publishing the retry of upload %s: %w", r.ID, err)
	}
	if err := queue.Emit(p.js, events.JobStatusChanged{JobID: r.ID, Type: r.Type, OrganizationID: r.OrganizationID, ProjectID: r.ProjectID,
		Generation: next.Generation, Status: jobs.Waiting, Previous: jobs.Failed, Attempt: r.Attempts, At: now})(); err != nil {
		return r, err
	}
	next.Status, next.UpdatedAt = jobs.Waiting, now
	return next, nil
}

func (p *Processor) process(ctx context.Context, rc events.Received, job jobstore.Record, attempt int) error {
	data, err := results.FromJSON(rc.Payload)
	if err != nil {
		return bus.Permanent(err)
	}
	now := p.now()
	r := results.Result{
		ID: rc.UploadID, OrganizationID: rc.OrganizationID, ProjectID: rc.ProjectID, Product: rc.Product,
		IdempotencyKey: rc.IdempotencyKey, JobID: job.ID, ReceivedAt: rc.ReceivedAt, ProcessedAt: now, Data: data,
	}
	figures, alert, err := p.describe(rc, &r)
	if err != nil {
		return bus.Permanent(err)
	}
	// The alert only once the result is stored, and the processed event
	// only once the job's COMPLETED record is: whoever hears of either
	// finds what it announces.
	if err := p.store(ctx, r, alert); err != nil {
		return err
	}
	if alert != nil {
		if err := p.raise(ctx, rc, *alert); err != nil {
			return err
		}
	}
	if err := p.transit(job, jobs.Completed, jobs.Active, attempt, "", r.ID); err != nil {
		return err
	}
	return p.announce(ctx, rc, job, r, figures, now)
}

// store writes the result document (once: a stored one is left as it is)
// and then its critical alert, if any, in a span of the upload's trace.
func (p *Processor) store(ctx context.Context, r results.Result, alert *events.CriticalAlert) error {
	ctx, end := tracing.Span(ctx, "store result", attribute.String("db.collection.name", results.Collection(r.Product)),
		attribute.String("odavl.upload.id", r.ID), attribute.String("odavl.product", string(r.Product)))
	var err error
	switch {
	case alert == nil:
		err = p.insert(ctx, r)
	case p.both != nil:
		err = p.both(ctx, r, alertDocument(*alert))
	default:
		if err = p.insert(ctx, r); err == nil || errors.Is(err, results.ErrExists) {
			if aerr := p.alert(ctx, alertDocument(*alert)); aerr != nil {
				err = aerr
			}
		}
	}
	if errors.Is(err, results.ErrExists) {
		err = nil
	}
	end(err)
	return err
}

// publishProcessed announces an upload stored by an earlier delivery.
func (p *Processor) publishProcessed(ctx context.Context, rc events.Received, job jobstore.Record, resultID string) error {
	r := results.Result{ID: resultID, Product: rc.Product}
	figures, _, err := p.describe(rc, &r)
	if err != nil {
		return bus.Permanent(err)
	}
	return p.announce(ctx, rc, job, r, figures, p.now())
}

// ProcessedID is the id of an upload's processed event in a retry
// generation: the same for every delivery of that generation, so the
// publish of a redelivery (its ack was lost, or it raced the first run) is
// dropped by JetStream's dedupe, and a manual retry's is a new event.
func ProcessedID(uploadID string, generation int) string {
	if generation == 0 {
		return "processed-" + uploadID
	}
	return fmt.Sprintf("processed-%s-g%d", uploadID, generation)
}

// announce publishes the processed event of a stored upload.
func (p *Processor) announce(ctx context.Context, rc events.Received, job jobstore.Record, r results.Result, figures events.Figures, now time.Time) error {
	ev, err := events.New(ProcessedID(rc.UploadID, rc.Generation), Source, events.ProcessedType(rc.Product), now, rc.OrganizationID, rc.ProjectID,
		events.Processed{
			UploadID: rc.UploadID, ResultID: r.ID, JobID: job.ID, OrganizationID: rc.OrganizationID, ProjectID: rc.ProjectID,
			Product: rc.Product, Timestamp: r.Timestamp, ReceivedAt: rc.ReceivedAt, ProcessedAt: now, Figures: figures,
		})
	if err != nil {
		return bus.Permanent(err)
	}
	ev.Subject = rc.UploadID
	if _, err := bus.Publish(ctx, p.js, events.ProcessedSubject(rc.OrganizationID, rc.ProjectID, rc.Product), ev); err != nil {
		return err
	}
	return nil
}

// describe fills the result's natural keys and filter fields and returns the
// figures for statistics and, for Insight with critical issues, the alert.
func (p *Processor) describe(rc events.Received, r *results.Result) (events.Figures, *events.CriticalAlert, error) {
	var f events.Figures
	switch rc.Product {
	case events.Insight:
		if r.Data == nil { // a redelivery's announce: the result was stored before
			data, err := results.FromJSON(rc.Payload)
			if err != nil {
				return f, nil, err
			}
			r.Data = data
		}
		in, err := readInsight(r.Data)
		if err != nil {
			return f, nil, err
		}
		r.Timestamp = in.Timestamp
		sev := in.IssuesBySeverity
		f.TotalIssues, f.IssuesBySeverity = in.TotalIssues, &sev
		if sev.Critical > 0 {
			a := &events.CriticalAlert{AlertID: "alert-" + rc.UploadID, UploadID: rc.UploadID,
				OrganizationID: rc.OrganizationID, ProjectID: rc.ProjectID, Critical: sev.Critical, RaisedAt: rc.ReceivedAt,
				Issues: []events.InsightIssue{}}
			for is := range in.critical(maxAlertIssues) {
				a.Issues = append(a.Issues, is)
			}
			return f, a, nil
		}
	case events.Autopilot:
		var in events.AutopilotLedger
		if err := json.Unmarshal(rc.Payload, &in); err != nil {
			return f, nil, fmt.Errorf("decoding autopilot payload: %w", err)
		}
		r.Timestamp, r.RunID, r.Success = in.Timestamp, in.RunID, &in.Success
		f.Success, f.TrustScore = &in.Success, in.TrustScore
	case events.Guardian:
		var in events.GuardianRun
		if err := json.Unmarshal(rc.Payload, &in); err != nil {
			return f, nil, fmt.Errorf("decoding guardian payload: %w", err)
		}
		r.Timestamp, r.TestRunID, r.Passed, r.Environment = in.Timestamp, in.TestRunID, &in.Passed, in.Environment
		f.Passed, f.AccessibilityScore = &in.Passed, in.Tests.Accessibility.Score
		f.Vulnerabilities, f.LoadTime, f.Environment = in.Tests.Security.Vulnerabilities, in.Tests.Performance.LoadTime, in.Environment
		lcp := in.Tests.Performance.LCP
		f.LCP = &lcp
	}
	return f, nil, nil
}

// maxAlertIssues is how many critical issues an alert lists.
const maxAlertIssues = 20

// insight is what describe reads of an Insight result: the head of its
// stored document (the issues are skipped over by their length, not read).
type insight struct {
	Timestamp        time.Time               `bson:"-"`
	Stamp            string                  `bson:"timestamp"`
	TotalIssues      int64                   `bson:"totalIssues"`
	IssuesBySeverity events.IssuesBySeverity `bson:"issuesBySeverity"`
	issues           bson.RawValue
}

// readInsight reads the figures of an Insight result from its stored form,
// as validated by the gateway.
func readInsight(data bson.Raw) (insight, error) {
	var in insight
	if err := bson.Unmarshal(data, &in); err != nil {
		return in, fmt.Errorf("decoding insight payload: %w", err)
	}
	t, err := time.Parse(time.RFC3339Nano, in.Stamp)
	if err != nil {
		return in, fmt.Errorf("decoding insight payload: timestamp: %w", err)
	}
	in.Timestamp, in.issues = t, data.Lookup("issues")
	return in, nil
}

// critical yields the first n critical issues, in their order.
func (in insight) critical(n int) iter.Seq[events.InsightIssue] {
	return func(yield func(events.InsightIssue) bool) {
		list, ok := in.issues.ArrayOK()
		if !ok {
			return
		}
		values, _ := list.Values()
		for _, v := range values {
			doc, ok := v.DocumentOK()
			if !ok || doc.Lookup("severity").StringValue() != events.SeverityCritical {
				continue
			}
			var is events.InsightIssue
			if n == 0 || bson.Unmarshal(doc, &is) != nil || !yield(is) {
				return
			}
			n--
		}
	}
}

// alertDocument is the stored form of a critical alert.
func alertDocument(a events.CriticalAlert) results.Alert {
	return results.Alert{ID: a.AlertID, UploadID: a.UploadID, OrganizationID: a.OrganizationID,
		ProjectID: a.ProjectID, Critical: a.Critical, Messages: alertMessages(a), RaisedAt: a.RaisedAt}
}

// raise publishes the critical alert event of a stored alert.
func (p *Processor) raise(ctx context.Context, rc events.Received, a events.CriticalAlert) error {
	ev, err := events.New(a.AlertID, Source, events.TypeCriticalAlert, a.RaisedAt, rc.OrganizationID, rc.ProjectID, a)
	if err != nil {
		return bus.Permanent(err)
	}
	ev.Subject = a.UploadID
	_, err = bus.Publish(ctx, p.js, events.CriticalAlertSubject(rc.OrganizationID, rc.ProjectID), ev)
	return err
}

// alertMessages names the critical issues of an alert, one line each
// (file:line:column message (detector)); the upload may count more critical
// issues than it lists, and an alert lists at most 20: a last line says so.
func alertMessages(a events.CriticalAlert) []string {
	msgs := make([]string, 0, len(a.Issues)+1)
	for _, is := range a.Issues {
		where := is.File
		if where == "" {
			where = "(no file)"
		}
		if is.Line > 0 {
			where += fmt.Sprintf(":%d", is.Line)
			if is.Column > 0 {
				where += fmt.Sprintf(":%d", is.Column)
			}
		}
		msgs = append(msgs, fmt.Sprintf("%s %s (%s)", where, is.Message, is.Detector))
	}
	if rest := a.Critical - int64(len(a.Issues)); rest > 0 {
		if len(a.Issues) == 0 {
			msgs = append(msgs, fmt.Sprintf("%d critical issue(s) counted; the upload lists none of them", rest))
		} else {
			msgs = append(msgs, fmt.Sprintf("and %d more critical issue(s)", rest))
		}
	}
	return msgs
}
