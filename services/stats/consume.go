package stats

import (
	"context"
	"fmt"

	"go.opentelemetry.io/otel/attribute"

	"github.com/odavl/sync/libs/bus"
	"github.com/odavl/sync/libs/events"
	"github.com/odavl/sync/libs/tracing"
	"github.com/odavl/sync/services/stats/internal/tally"
)

// handle counts one event: a processed upload, a job's status change or a
// file's change. Other events on the subjects are not counted.
func (s *Service) handle(ctx context.Context, d bus.Delivery) error {
	c, ok, err := changeOf(d.Event)
	if err != nil {
		return bus.Permanent(err)
	}
	if !ok {
		return nil
	}
	ctx, end := tracing.Span(ctx, "update aggregates", attribute.String("odavl.organization.id", c.OrganizationID),
		attribute.String("odavl.project.id", c.ProjectID))
	err = s.store.Apply(ctx, c, s.crash)
	end(err)
	return err
}

func changeOf(ev events.Event) (tally.Change, bool, error) {
	switch ev.Type {
	case events.TypeInsightProcessed, events.TypeAutopilotProcessed, events.TypeGuardianProcessed:
		var p events.Processed
		if err := ev.DataAs(&p); err != nil {
			return tally.Change{}, false, err
		}
		if p.UploadID == "" {
			return tally.Change{}, false, fmt.Errorf("processed event %s without upload id", ev.ID)
		}
		c, err := tally.FromProcessed(tally.ProcessedID(p.UploadID), p)
		return c, err == nil, err
	case events.TypeJobStatus:
		var j events.JobStatusChanged
		if err := ev.DataAs(&j); err != nil {
			return tally.Change{}, false, err
		}
		if j.Status == j.Previous {
			return tally.Change{}, false, nil // a progress report: the job entered no status
		}
		c, err := tally.FromJob(ev.ID, j)
		return c, err == nil, err
	case events.TypeFileEvent:
		var f events.FileChanged
		if err := ev.DataAs(&f); err != nil {
			return tally.Change{}, false, err
		}
		c, err := tally.FromFile(ev.ID, f)
		return c, err == nil, err
	}
	return tally.Change{}, false, nil
}
