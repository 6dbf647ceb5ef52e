package httpapi

import (
	"errors"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/odavl/sync/libs/events"
	"github.com/odavl/sync/libs/rpc"
	"github.com/odavl/sync/services/ingest/internal/tenancy"
)

const keyCtx = "odavl.key"

// authenticate checks the bearer key and the tenant headers on every /api/v1
// route: no key or an unknown one is 401; headers that do not name the key's
// tenant are 403 (an admin key may act for any project of its organization).
func (a *API) authenticate(c *gin.Context) {
	h := c.GetHeader("Authorization")
	token, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || strings.TrimSpace(token) == "" {
		c.Header("WWW-Authenticate", `Bearer realm="odavl-sync"`)
		problem(c, http.StatusUnauthorized, "unauthorized", "missing API key: send Authorization: Bearer <key>")
		return
	}
	if !a.limitLookup(c, strings.TrimSpace(token)) {
		return
	}
	key, err := a.tenants.Authenticate(c.Request.Context(), strings.TrimSpace(token))
	if errors.Is(err, tenancy.ErrUnknownKey) {
		c.Header("WWW-Authenticate", `Bearer realm="odavl-sync", error="invalid_token"`)
		problem(c, http.StatusUnauthorized, "unauthorized", "unknown or revoked API key")
		return
	}
	if err != nil {
		a.fail(c, err)
		return
	}
	org, project := c.GetHeader("X-Organization-Id"), c.GetHeader("X-Project-Id")
	var fields []rpc.FieldError
	if org == "" {
		fields = append(fields, rpc.FieldError{Field: "X-Organization-Id", Message: "header is required"})
	} else if !events.ValidToken(org) {
		fields = append(fields, rpc.FieldError{Field: "X-Organization-Id", Message: "must be 1-64 letters, digits, '-' or '_'"})
	}
	if project == "" {
		fields = append(fields, rpc.FieldError{Field: "X-Project-Id", Message: "header is required"})
	} else if !events.ValidToken(project) {
		fields = append(fields, rpc.FieldError{Field: "X-Project-Id", Message: "must be 1-64 letters, digits, '-' or '_'"})
	}
	if len(fields) > 0 {
		problem(c, http.StatusBadRequest, "bad-tenant-headers", "X-Organization-Id and X-Project-Id must name the key's tenant", fields...)
		return
	}
	if org != key.OrganizationID || (project != key.ProjectID && !key.Has(tenancy.ScopeAdmin)) {
		problem(c, http.StatusForbidden, "forbidden", "this API key is not valid for organization "+org+" project "+project)
		return
	}
	if project != key.ProjectID {
		// An admin key acts for a project of its organization that exists:
		// a typo in X-Project-Id must not create data in a project nobody
		// created.
		err := a.tenants.CheckProject(c.Request.Context(), org, project)
		if errors.Is(err, tenancy.ErrUnknownProject) {
			problem(c, http.StatusNotFound, "unknown-project", "organization "+org+" has no project "+project+": create it first (POST /api/v1/admin/keys with its projectId creates it), or check X-Project-Id",
				rpc.FieldError{Field: "X-Project-Id", Message: "names project " + project + ", which does not exist in organization " + org})
			return
		}
		if err != nil {
			a.log.Warn("checking project", "org", org, "project", project, "err", err)
			c.Header("Retry-After", "1")
			problem(c, http.StatusServiceUnavailable, "unavailable", "project "+project+" could not be checked; nothing was done — retry")
			return
		}
	}
	key.ProjectID = project // an admin key acts for the project it names
	c.Set(keyCtx, key)
	c.Next()
}

func keyOf(c *gin.Context) tenancy.Key { return c.MustGet(keyCtx).(tenancy.Key) }

func tenantOf(c *gin.Context) rpc.Tenant {
	k := keyOf(c)
	return rpc.Tenant{OrganizationID: k.OrganizationID, ProjectID: k.ProjectID}
}

// requireAdmin answers 403 unless the key has the admin scope.
func requireAdmin(c *gin.Context) {
	if !keyOf(c).Has(tenancy.ScopeAdmin) {
		problem(c, http.StatusForbidden, "forbidden", "this route needs an admin-scoped API key")
		return
	}
	c.Next()
}

// requireOperator answers 403 unless the key has the operator scope: the
// route acts on the whole deployment (every organization), which no
// organization's key may do.
func requireOperator(c *gin.Context) {
	if !keyOf(c).Has(tenancy.ScopeOperator) {
		problem(c, http.StatusForbidden, "forbidden", "this route acts on every organization: it needs the deployment's operator key (serve's own key or BOOTSTRAP_ADMIN_KEY); an organization's admin key acts on its own organization only")
		return
	}
	c.Next()
}

// adminScope reads the scope of an admin action (query parameter scope):
// organization, the caller's organization (an admin key's default), or
// whole, every organization (the operator key's default, and only its).
// what names whole's object and action the action on it in the answers: a
// bad scope is 400 naming the parameter, whole without the operator key
// 403 naming the operator key; ok is false when it answered.
func adminScope(c *gin.Context, whole, what, action string) (scope string, ok bool) {
	operator := keyOf(c).Has(tenancy.ScopeOperator)
	scope = c.Query("scope")
	switch {
	case scope == "" && operator:
		return whole, true
	case scope == "":
		return rpc.ScopeOrganization, true
	case scope != whole && scope != rpc.ScopeOrganization:
		problem(c, http.StatusBadRequest, "bad-query", "invalid query parameter(s)",
			rpc.FieldError{Field: "scope", Message: "must be " + whole + " (" + what + ") or organization (your organization's)"})
		return "", false
	case scope == whole && !operator:
		problem(c, http.StatusForbidden, "forbidden", action+" (scope="+whole+") acts on the whole deployment: it needs the deployment's operator key; an organization's admin key acts on its own organization (scope=organization)")
		return "", false
	}
	return scope, true
}
