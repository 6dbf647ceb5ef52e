package httpapi

import "github.com/gin-gonic/gin"

// dashboardRoutes mounts the dashboard and its live event stream.
func (a *API) dashboardRoutes(r *gin.Engine, v1 *gin.RouterGroup) {}
