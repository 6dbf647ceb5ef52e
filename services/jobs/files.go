package jobs

import (
	"github.com/odavl/sync/libs/jobs"
	"github.com/odavl/sync/services/jobs/internal/handlers"
	"github.com/odavl/sync/services/jobs/internal/queue"
)

// registerFileHandlers registers the handlers whose output goes through the
// storage service (DATA_EXPORT, REPORT_GENERATION).
func (s *Service) registerFileHandlers(q *queue.Queue) {
	f := handlers.NewFiles(s.nc, s.results)
	q.Handle(jobs.DataExport, f.Export)
	q.Handle(jobs.ReportGeneration, f.Report)
}
