package httpapi

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/odavl/sync/libs/events"
	"github.com/odavl/sync/libs/rpc"
	"github.com/odavl/sync/services/ingest/internal/tenancy"
)

func (a *API) adminRoutes(g *gin.RouterGroup) {
	g.POST("/keys", a.createKey)
}

// projects answers the projects the key may act for: every project of its
// organization for an admin key, its own project for any other, so the
// dashboard offers a switcher without a refused request.
func (a *API) projects(c *gin.Context) {
	key := keyOf(c)
	if !key.Has(tenancy.ScopeAdmin) {
		own := tenancy.Project{OrganizationID: key.OrganizationID, ProjectID: key.ProjectID}
		answer(c, http.StatusOK, gin.H{"items": []tenancy.Project{own}, "total": 1})
		return
	}
	ps, err := a.tenants.Projects(c.Request.Context(), key.OrganizationID)
	if err != nil {
		a.fail(c, err)
		return
	}
	answer(c, http.StatusOK, gin.H{"items": ps, "total": len(ps)})
}

// CreateKeyRequest asks for a new API key.
type CreateKeyRequest struct {
	OrganizationID string   `json:"organizationId"`
	ProjectID      string   `json:"projectId"`
	Name           string   `json:"name"`
	Scopes         []string `json:"scopes"`
}

// createKey creates a key (and its organization and project when new) and
// answers it once. An organization's admin creates keys for its own
// organization only; only an operator key (the deployment's own) creates
// them for any.
func (a *API) createKey(c *gin.Context) {
	body, ok := a.readBody(c)
	if !ok {
		return
	}
	var req CreateKeyRequest
	if ferr := decodeStrict(body, &req); ferr != nil {
		badBody(c, ferr)
		return
	}
	var fields []rpc.FieldError
	if !events.ValidToken(req.OrganizationID) {
		fields = append(fields, rpc.FieldError{Field: "organizationId", Message: "must be 1-64 letters, digits, '-' or '_'"})
	}
	if !events.ValidToken(req.ProjectID) {
		fields = append(fields, rpc.FieldError{Field: "projectId", Message: "must be 1-64 letters, digits, '-' or '_'"})
	}
	for _, s := range req.Scopes {
		if s != "sync" && s != "admin" {
			fields = append(fields, rpc.FieldError{Field: "scopes", Message: "each scope must be sync or admin"})
			break
		}
	}
	if len(fields) > 0 {
		problem(c, http.StatusBadRequest, "validation", "invalid key request", fields...)
		return
	}
	if caller := keyOf(c); req.OrganizationID != caller.OrganizationID && !caller.Has(tenancy.ScopeOperator) {
		problem(c, http.StatusForbidden, "forbidden", "an admin key creates keys only for its own organization ("+caller.OrganizationID+"), not for "+req.OrganizationID)
		return
	}
	key, rec, err := a.tenants.CreateKey(c.Request.Context(), req.OrganizationID, req.ProjectID, req.Name, req.Scopes)
	if err != nil {
		a.fail(c, err)
		return
	}
	answer(c, http.StatusCreated, gin.H{"key": key, "id": rec.ID, "organizationId": rec.OrganizationID, "projectId": rec.ProjectID, "scopes": rec.Scopes, "createdAt": rec.CreatedAt})
}
