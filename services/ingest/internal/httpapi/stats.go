package httpapi

import (
	"context"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/odavl/sync/libs/events"
	"github.com/odavl/sync/libs/jobs"
	"github.com/odavl/sync/libs/rpc"
	"github.com/odavl/sync/services/ingest/internal/tenancy"
)

// statsRebuildTimeout bounds a rebuild requested through the gateway.
const statsRebuildTimeout = 30 * time.Minute

// statsRoutes mounts the statistics routes (the stats service's).
func (a *API) statsRoutes(g *gin.RouterGroup) {
	g.GET("/stats/summary", a.statsQuery(rpc.StatsSummary))
	g.GET("/stats/trends", a.statsQuery(rpc.StatsTrends))
	// An organization's admin rebuilds its organization's figures; every
	// organization's (scope=all) is the operator's.
	g.POST("/admin/stats/rebuild", requireAdmin, a.rebuildStats)
}

// statsQuery answers a summary or trends request: scope (project, the
// default, or organization with an admin key), from and to (UTC days,
// YYYY-MM-DD, both included).
func (a *API) statsQuery(subject string) gin.HandlerFunc {
	return func(c *gin.Context) {
		q := rpc.StatsQuery{Tenant: tenantOf(c), Scope: c.Query("scope"), From: c.Query("from"), To: c.Query("to")}
		if q.Scope != "" && q.Scope != rpc.ScopeProject && q.Scope != rpc.ScopeOrganization {
			problem(c, http.StatusBadRequest, "bad-query", "invalid query parameter(s)",
				rpc.FieldError{Field: "scope", Message: "must be project or organization"})
			return
		}
		if q.Scope == rpc.ScopeOrganization {
			// A project's key sees its project; the organization's figures need an admin key.
			if !keyOf(c).Has(tenancy.ScopeAdmin) {
				problem(c, http.StatusForbidden, "forbidden", "scope=organization needs an admin-scoped API key")
				return
			}
			q.ProjectID = ""
		}
		var (
			resp any
			err  error
		)
		if subject == rpc.StatsSummary {
			current := make(chan map[string]int64, 1)
			go func() { current <- a.currentJobs(c.Request.Context(), q.Tenant) }()
			var sum rpc.StatsSummaryResponse
			sum, err = rpc.Call[rpc.StatsSummaryResponse](c.Request.Context(), a.nc, subject, q)
			sum.Jobs.Current = <-current
			resp = sum
		} else {
			resp, err = rpc.Call[rpc.StatsTrendsResponse](c.Request.Context(), a.nc, subject, q)
		}
		if err != nil {
			a.fail(c, err)
			return
		}
		answer(c, http.StatusOK, resp)
	}
}

// currentJobs is how many of the tenant's jobs (every project's when
// ProjectID is empty) are in each status now, as the jobs service's queue
// counts them; nil, logged, when the queue does not answer in time.
func (a *API) currentJobs(ctx context.Context, t rpc.Tenant) map[string]int64 {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	st, err := rpc.Call[rpc.JobStats](ctx, a.nc, rpc.JobsStats, rpc.ListJobsRequest{Tenant: t})
	if err != nil {
		a.log.Warn("current job counts unavailable", "err", err)
		return nil
	}
	out := make(map[string]int64, len(jobs.Statuses))
	for _, s := range jobs.Statuses {
		out[s] = st.ByStatus[s]
	}
	return out
}

// rebuildStats recomputes aggregates from the source documents and answers
// when the new figures are served: the caller's organization's (every
// project of it; scope=organization, an admin key's default) or every
// organization's (scope=all, the operator key's default and only its).
func (a *API) rebuildStats(c *gin.Context) {
	scope, ok := adminScope(c, rpc.ScopeAll, "every organization's statistics", "rebuilding every organization's statistics")
	if !ok {
		return
	}
	req := rpc.StatsRebuildRequest{Scope: scope}
	if scope == rpc.ScopeOrganization {
		req.OrganizationID = keyOf(c).OrganizationID
	}
	ctx, cancel := context.WithTimeout(c.Request.Context(), statsRebuildTimeout)
	defer cancel()
	resp, err := rpc.Call[rpc.StatsRebuildResponse](ctx, a.nc, rpc.StatsRebuild, req)
	if err != nil {
		a.fail(c, err)
		return
	}
	answer(c, http.StatusOK, resp)
}

// summary is the summary figures shown beside a product's list: the
// project's all-time figures, read from the stats service's aggregates; nil
// when the stats service does not answer in time.
func (a *API) summary(c *gin.Context, p events.Product) any {
	ctx, cancel := context.WithTimeout(c.Request.Context(), 2*time.Second)
	defer cancel()
	s, err := rpc.Call[rpc.StatsSummaryResponse](ctx, a.nc, rpc.StatsSummary, rpc.StatsQuery{Tenant: tenantOf(c), Scope: rpc.ScopeProject})
	if err != nil {
		a.log.Warn("list summary unavailable", "product", p, "err", err)
		return nil
	}
	switch p {
	case events.Insight:
		return gin.H{"total": s.Insight.Analyses, "totalIssues": s.Insight.TotalIssues, "issuesBySeverity": s.Insight.IssuesBySeverity}
	case events.Autopilot:
		f := s.Autopilot
		return gin.H{"total": f.Total, "successful": f.Successful, "failed": f.Failed, "successRate": f.SuccessRate}
	case events.Guardian:
		f := s.Guardian
		return gin.H{"total": f.Total, "passed": f.Passed, "failed": f.Failed, "passRate": f.PassRate,
			"averageAccessibilityScore": f.AverageAccessibilityScore, "totalVulnerabilities": f.TotalVulnerabilities}
	}
	return nil
}
