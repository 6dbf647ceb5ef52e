package httpapi

import (
	"github.com/gin-gonic/gin"

	"github.com/odavl/sync/libs/events"
)

// statsRoutes mounts the statistics routes (the stats service's).
func (a *API) statsRoutes(g *gin.RouterGroup) {}

// summary is the summary figures shown beside a product's list; nil until
// the stats service serves them.
func (a *API) summary(c *gin.Context, p events.Product) any { return nil }
