package httpapi

import (
	"errors"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/odavl/sync/libs/rpc"
)

// ProblemBase prefixes the problem type URIs.
const ProblemBase = "https://odavl.dev/problems/"

// Problem is an RFC 9457 problem details body.
type Problem struct {
	Type     string           `json:"type"`
	Title    string           `json:"title"`
	Status   int              `json:"status"`
	Detail   string           `json:"detail,omitempty"`
	Instance string           `json:"instance,omitempty"`
	Errors   []rpc.FieldError `json:"errors,omitempty"`
}

func problem(c *gin.Context, status int, kind, detail string, fields ...rpc.FieldError) {
	p := Problem{Type: ProblemBase + kind, Title: http.StatusText(status), Status: status, Detail: detail, Instance: c.Request.URL.Path, Errors: fields}
	c.Header("Content-Type", "application/problem+json")
	c.Abort()
	answer(c, status, p)
}

// fail answers err: a service's *rpc.Error keeps its status and message; any
// other error is a 500 whose detail stays in the log.
func (a *API) fail(c *gin.Context, err error) {
	var re *rpc.Error
	if errors.As(err, &re) {
		kind := map[int]string{400: "bad-request", 403: "forbidden", 404: "not-found", 409: "conflict", 410: "gone", 422: "unprocessable", rpc.StatusClientClosed: "client-closed", 503: "unavailable", 504: "timeout"}[re.Status]
		if kind == "" {
			kind = "error"
		}
		if re.Status >= 500 {
			a.log.Warn("service unavailable", "path", c.Request.URL.Path, "err", err)
		}
		problem(c, re.Status, kind, re.Message, re.Fields...)
		return
	}
	a.log.Error("request failed", "path", c.Request.URL.Path, "err", err)
	problem(c, http.StatusInternalServerError, "internal", "internal error; nothing you sent was lost if you got no 2xx — retry")
}
