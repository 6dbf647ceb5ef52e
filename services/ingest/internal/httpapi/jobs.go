package httpapi

import "github.com/gin-gonic/gin"

// jobRoutes mounts the job queue routes (the jobs service's).
func (a *API) jobRoutes(g *gin.RouterGroup) {}
