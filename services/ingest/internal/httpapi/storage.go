package httpapi

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/odavl/sync/libs/events"
	"github.com/odavl/sync/libs/rpc"
)

// storageRoutes mounts the file routes. Each one translates HTTP into a
// request to the storage service, which holds every rule.
func (a *API) storageRoutes(g *gin.RouterGroup) {
	s := g.Group("/storage")
	s.POST("/upload-url", a.uploadURL)
	s.GET("/upload-url", a.downloadURL)
	s.POST("/multipart", a.multipartInit)
	s.POST("/multipart/:fileId/parts/:n", a.partURL)
	s.POST("/multipart/:fileId/complete", a.multipartComplete)
	s.DELETE("/multipart/:fileId", a.multipartAbort)
	s.GET("/files", a.listFiles)
	s.GET("/files/:id", a.fileCall(rpc.StorageGetFile))
	s.DELETE("/files/:id", a.fileCall(rpc.StorageDeleteFile))
	s.POST("/files/:id/confirm", a.fileCall(rpc.StorageConfirm))
	s.GET("/files/:id/content", a.fileContent)
	s.GET("/stats", a.storageStats)
}

// UploadURLBody is the body of POST /storage/upload-url and /storage/multipart.
type UploadURLBody struct {
	Filename    string `json:"filename"`
	ContentType string `json:"contentType"`
	Size        int64  `json:"size"`
	ExpiresIn   int    `json:"expiresIn,omitempty"`
	AccessLevel string `json:"accessLevel,omitempty"`
	RetainFor   int64  `json:"retainFor,omitempty"`
}

func callerOf(c *gin.Context) rpc.Caller {
	return rpc.Caller{Tenant: tenantOf(c), KeyID: keyOf(c).ID}
}

// uploadRequest reads an UploadURLBody; it reports false when it has answered.
func (a *API) uploadRequest(c *gin.Context) (rpc.UploadURLRequest, bool) {
	body, ok := a.readBody(c)
	if !ok {
		return rpc.UploadURLRequest{}, false
	}
	var b UploadURLBody
	if ferr := decodeStrict(body, &b); ferr != nil {
		badBody(c, ferr)
		return rpc.UploadURLRequest{}, false
	}
	return rpc.UploadURLRequest{Caller: callerOf(c), Filename: b.Filename, ContentType: b.ContentType, Size: b.Size,
		ExpiresIn: b.ExpiresIn, AccessLevel: b.AccessLevel, RetainFor: b.RetainFor}, true
}

func (a *API) uploadURL(c *gin.Context) {
	req, ok := a.uploadRequest(c)
	if !ok {
		return
	}
	resp, err := rpc.Call[rpc.UploadURLResponse](c.Request.Context(), a.nc, rpc.StorageUploadURL, req)
	if err != nil {
		a.fail(c, err)
		return
	}
	answer(c, http.StatusCreated, resp)
}

func (a *API) multipartInit(c *gin.Context) {
	req, ok := a.uploadRequest(c)
	if !ok {
		return
	}
	resp, err := rpc.Call[rpc.MultipartResponse](c.Request.Context(), a.nc, rpc.StorageMultipartInit, req)
	if err != nil {
		a.fail(c, err)
		return
	}
	answer(c, http.StatusCreated, resp)
}

// expiresQuery reads the optional expiresIn query parameter.
func expiresQuery(c *gin.Context, fields *[]rpc.FieldError) int {
	v := c.Query("expiresIn")
	if v == "" {
		return 0
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < rpc.MinExpiresIn || n > rpc.MaxExpiresIn {
		*fields = append(*fields, rpc.FieldError{Field: "expiresIn", Message: "must be 60 to 3600 seconds"})
	}
	return n
}

func (a *API) downloadURL(c *gin.Context) {
	var fields []rpc.FieldError
	id := c.Query("fileId")
	if id == "" {
		fields = append(fields, rpc.FieldError{Field: "fileId", Message: "query parameter is required"})
	} else if !events.ValidID(id) {
		fields = append(fields, rpc.FieldError{Field: "fileId", Message: events.IDRule})
	}
	exp := expiresQuery(c, &fields)
	if len(fields) > 0 {
		problem(c, http.StatusBadRequest, "bad-query", "invalid query parameter(s)", fields...)
		return
	}
	resp, err := rpc.Call[rpc.DownloadURLResponse](c.Request.Context(), a.nc, rpc.StorageDownloadURL, rpc.FileRequest{Caller: callerOf(c), FileID: id, ExpiresIn: exp})
	if err != nil {
		a.fail(c, err)
		return
	}
	answer(c, http.StatusOK, resp)
}

// fileContent redirects to a fresh download URL: fileUrl is permanent.
// publicFile is GET /public/files/{id}, the keyless permanent link of a
// PUBLIC file: a redirect to a fresh signed download URL, from whichever
// storage instance answers. Any other file, or an unknown id, is 404 (never
// 403, which would tell that it exists).
func (a *API) publicFile(c *gin.Context) {
	id := c.Param("id")
	resp, err := rpc.Call[rpc.DownloadURLResponse](c.Request.Context(), a.nc, rpc.StoragePublicURL, rpc.FileRequest{FileID: id})
	var re *rpc.Error
	if errors.As(err, &re) && re.Status < 500 {
		problem(c, http.StatusNotFound, "not-found", "no public file "+id)
		return
	}
	if err != nil {
		a.fail(c, err)
		return
	}
	c.Header("Cache-Control", "no-store")
	c.Redirect(http.StatusFound, resp.DownloadURL)
}

func (a *API) fileContent(c *gin.Context) {
	resp, err := rpc.Call[rpc.DownloadURLResponse](c.Request.Context(), a.nc, rpc.StorageDownloadURL, rpc.FileRequest{Caller: callerOf(c), FileID: c.Param("id")})
	if err != nil {
		a.fail(c, err)
		return
	}
	c.Header("Cache-Control", "no-store")
	c.Redirect(http.StatusFound, resp.DownloadURL)
}

func (a *API) partURL(c *gin.Context) {
	n, err := strconv.Atoi(c.Param("n"))
	if err != nil || n < 1 {
		problem(c, http.StatusBadRequest, "bad-path", "the part number must be a positive integer", rpc.FieldError{Field: "partNumber", Message: "must be a positive integer"})
		return
	}
	resp, err := rpc.Call[rpc.PartURLResponse](c.Request.Context(), a.nc, rpc.StoragePartURL, rpc.PartRequest{Caller: callerOf(c), FileID: c.Param("fileId"), PartNumber: n})
	if err != nil {
		a.fail(c, err)
		return
	}
	answer(c, http.StatusOK, resp)
}

// CompleteBody is the body of POST /storage/multipart/{fileId}/complete.
type CompleteBody struct {
	Parts []rpc.CompletedPart `json:"parts"`
}

func (a *API) multipartComplete(c *gin.Context) {
	body, ok := a.readBody(c)
	if !ok {
		return
	}
	var b CompleteBody
	if ferr := decodeStrict(body, &b); ferr != nil {
		badBody(c, ferr)
		return
	}
	if len(b.Parts) == 0 {
		problem(c, http.StatusBadRequest, "validation", "list the uploaded parts", rpc.FieldError{Field: "parts", Message: "is required"})
		return
	}
	resp, err := rpc.Call[rpc.File](c.Request.Context(), a.nc, rpc.StorageMultipartDone, rpc.PartRequest{Caller: callerOf(c), FileID: c.Param("fileId"), Parts: b.Parts})
	if err != nil {
		a.fail(c, err)
		return
	}
	answer(c, http.StatusOK, resp)
}

func (a *API) multipartAbort(c *gin.Context) {
	resp, err := rpc.Call[rpc.File](c.Request.Context(), a.nc, rpc.StorageMultipartDrop, rpc.PartRequest{Caller: callerOf(c), FileID: c.Param("fileId")})
	if err != nil {
		a.fail(c, err)
		return
	}
	answer(c, http.StatusOK, resp)
}

// fileCall sends a FileRequest for the path's file to subject.
func (a *API) fileCall(subject string) gin.HandlerFunc {
	return func(c *gin.Context) {
		resp, err := rpc.Call[rpc.File](c.Request.Context(), a.nc, subject, rpc.FileRequest{Caller: callerOf(c), FileID: c.Param("id")})
		if err != nil {
			a.fail(c, err)
			return
		}
		answer(c, http.StatusOK, resp)
	}
}

func (a *API) listFiles(c *gin.Context) {
	req := rpc.ListFilesRequest{Caller: callerOf(c), Limit: 20}
	var fields []rpc.FieldError
	if v := c.Query("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			fields = append(fields, rpc.FieldError{Field: "limit", Message: "must be an integer from 1 to 100"})
		}
		req.Limit = n
	}
	if v := c.Query("offset"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			fields = append(fields, rpc.FieldError{Field: "offset", Message: "must be a non-negative integer"})
		}
		req.Offset = n
	}
	switch v := c.Query("status"); v {
	case "", rpc.FilePending, rpc.FileUploaded:
		req.Status = v
	default:
		fields = append(fields, rpc.FieldError{Field: "status", Message: "must be PENDING or UPLOADED"})
	}
	req.ContentType = c.Query("contentType")
	if len(fields) > 0 {
		problem(c, http.StatusBadRequest, "bad-query", "invalid query parameter(s)", fields...)
		return
	}
	resp, err := rpc.Call[rpc.ListFilesResponse](c.Request.Context(), a.nc, rpc.StorageListFiles, req)
	if err != nil {
		a.fail(c, err)
		return
	}
	answer(c, http.StatusOK, resp)
}

func (a *API) storageStats(c *gin.Context) {
	resp, err := rpc.Call[rpc.StorageStatsResponse](c.Request.Context(), a.nc, rpc.StorageStats, tenantOf(c))
	if err != nil {
		a.fail(c, err)
		return
	}
	answer(c, http.StatusOK, resp)
}
