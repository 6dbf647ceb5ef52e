package httpapi

import "github.com/gin-gonic/gin"

// storageRoutes mounts the file routes (the storage service's).
func (a *API) storageRoutes(g *gin.RouterGroup) {}
