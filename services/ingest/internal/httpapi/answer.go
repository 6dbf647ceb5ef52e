package httpapi

import (
	"github.com/gin-gonic/gin"
)

// answer writes v as the JSON body of a status answer, with &, < and >
// as they are. gin's c.JSON escapes them (\u0026): a signed URL copied from
// the raw answer (curl, a log) then carries a literal \u0026, and the store
// refuses it. Every JSON answer of the gateway goes through here.
func answer(c *gin.Context, status int, v any) {
	c.PureJSON(status, v)
}
