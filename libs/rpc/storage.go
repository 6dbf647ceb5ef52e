package rpc

import "time"

// Subjects of the storage service. Other services (the jobs service's exports
// and reports, the gateway's screenshot checks) use the same requests as the
// gateway does for clients.
const (
	StorageUploadURL     = "odavl.storage.v1.upload-url"     // UploadURLRequest -> UploadURLResponse
	StorageDownloadURL   = "odavl.storage.v1.download-url"   // FileRequest -> DownloadURLResponse
	StorageConfirm       = "odavl.storage.v1.confirm"        // FileRequest -> File
	StorageGetFile       = "odavl.storage.v1.files.get"      // FileRequest -> File
	StorageListFiles     = "odavl.storage.v1.files.list"     // ListFilesRequest -> ListFilesResponse
	StorageDeleteFile    = "odavl.storage.v1.files.delete"   // FileRequest -> File
	StorageStats         = "odavl.storage.v1.stats"          // Tenant -> StorageStatsResponse
	StorageMultipartInit = "odavl.storage.v1.multipart.init" // UploadURLRequest -> MultipartResponse
	StoragePartURL       = "odavl.storage.v1.multipart.part" // PartRequest -> PartURLResponse
	StorageMultipartDone = "odavl.storage.v1.multipart.complete"
	StorageMultipartDrop = "odavl.storage.v1.multipart.abort" // PartRequest -> File
	StorageCleanup       = "odavl.storage.v1.cleanup"         // struct{} -> CleanupResponse
	// StoragePublicURL answers a signed download URL of a PUBLIC file to
	// anyone (the gateway's keyless /public/files/{id}); any other file is 404.
	StoragePublicURL = "odavl.storage.v1.public-url" // FileRequest (FileID only) -> DownloadURLResponse
)

// Limits of the storage requests.
const (
	MaxFileSize        = 100 << 20 // bytes
	MultipartThreshold = 5 << 20   // files larger than this may (and should) use multipart
	MinExpiresIn       = 60        // seconds
	MaxExpiresIn       = 3600
	DefaultExpiresIn   = 3600
)

// Statuses of a file.
const (
	FilePending  = "PENDING"
	FileUploaded = "UPLOADED"
	FileDeleted  = "DELETED"
)

// CleanupResponse counts what one cleanup round removed.
type CleanupResponse struct {
	Expired   int `json:"expired"`
	Abandoned int `json:"abandoned"`
	Confirmed int `json:"confirmed"`
}

// Access levels of a file.
const (
	AccessPublic       = "PUBLIC"
	AccessPrivate      = "PRIVATE"
	AccessOrganization = "ORGANIZATION"
	AccessProject      = "PROJECT"
)

// Caller is who asks: the tenant and the API key, for access checks.
type Caller struct {
	Tenant
	KeyID string `json:"keyId"`
}

// UploadURLRequest asks for a signed upload URL (or a multipart upload).
type UploadURLRequest struct {
	Caller
	Filename    string `json:"filename"`
	ContentType string `json:"contentType"`
	Size        int64  `json:"size"`
	ExpiresIn   int    `json:"expiresIn,omitempty"` // seconds, 60-3600, default 3600
	AccessLevel string `json:"accessLevel,omitempty"`
	// RetainFor keeps the file that many seconds after the request; then
	// the cleanup job removes it. Zero keeps it (or applies the service's
	// default retention).
	RetainFor int64 `json:"retainFor,omitempty"`
	// Generated marks a file a service generates itself (an HTML report);
	// the gateway never sets it.
	Generated bool `json:"generated,omitempty"`
}

// UploadInstructions say how to send the bytes.
type UploadInstructions struct {
	Method  string            `json:"method"`
	Headers map[string]string `json:"headers"`
}

// UploadURLResponse is a signed upload URL.
type UploadURLResponse struct {
	UploadURL    string             `json:"uploadUrl"`
	FileURL      string             `json:"fileUrl"`
	FileID       string             `json:"fileId"`
	ExpiresAt    time.Time          `json:"expiresAt"`
	Instructions UploadInstructions `json:"instructions"`
}

// FileRequest names one file.
type FileRequest struct {
	Caller
	FileID    string `json:"fileId"`
	ExpiresIn int    `json:"expiresIn,omitempty"`
}

// DownloadURLResponse is a signed download URL.
type DownloadURLResponse struct {
	DownloadURL string    `json:"downloadUrl"`
	FileID      string    `json:"fileId"`
	ExpiresAt   time.Time `json:"expiresAt"`
}

// File is a file record as the API shows it.
type File struct {
	ID             string `json:"id"`
	OrganizationID string `json:"organizationId"`
	ProjectID      string `json:"projectId"`
	UploaderKeyID  string `json:"uploaderKeyId"`
	Name           string `json:"name"`
	OriginalName   string `json:"originalName"`
	ContentType    string `json:"contentType"`
	Size           int64  `json:"size"`
	AccessLevel    string `json:"accessLevel"`
	Status         string `json:"status"`        // PENDING, UPLOADED, DELETED
	DownloadCount  int64  `json:"downloadCount"` // download URLs issued
	// Downloads counts the bytes actually served (local provider only: the
	// cloud stores serve them without us).
	Downloads  int64      `json:"downloads,omitempty"`
	Multipart  bool       `json:"multipart,omitempty"`
	FileURL    string     `json:"fileUrl,omitempty"`
	CreatedAt  time.Time  `json:"createdAt"`
	UploadedAt *time.Time `json:"uploadedAt,omitempty"`
	ExpiresAt  *time.Time `json:"expiresAt,omitempty"`
}

// ListFilesRequest asks for a page of files.
type ListFilesRequest struct {
	Caller
	Status      string `json:"status,omitempty"`
	ContentType string `json:"contentType,omitempty"`
	Limit       int    `json:"limit"`
	Offset      int    `json:"offset"`
}

// ListFilesResponse is a page of files.
type ListFilesResponse struct {
	Items  []File `json:"items"`
	Total  int64  `json:"total"`
	Limit  int    `json:"limit"`
	Offset int    `json:"offset"`
}

// StorageStatsResponse counts files and bytes by content type.
type StorageStatsResponse struct {
	TotalFiles    int64                   `json:"totalFiles"`
	TotalBytes    int64                   `json:"totalBytes"`
	ByContentType map[string]ContentStats `json:"byContentType"`
}

// ContentStats is the count and bytes of one content type.
type ContentStats struct {
	Files int64 `json:"files"`
	Bytes int64 `json:"bytes"`
}

// MultipartResponse starts a multipart upload.
type MultipartResponse struct {
	FileID    string    `json:"fileId"`
	FileURL   string    `json:"fileUrl"`
	UploadID  string    `json:"uploadId"`
	PartSize  int64     `json:"partSize"`
	Parts     int       `json:"parts"`
	ExpiresAt time.Time `json:"expiresAt"`
}

// PartRequest asks for the signed URL of one part, or completes/aborts.
type PartRequest struct {
	Caller
	FileID     string          `json:"fileId"`
	PartNumber int             `json:"partNumber,omitempty"`
	Parts      []CompletedPart `json:"parts,omitempty"`
}

// CompletedPart is a part the client sent, with the ETag the provider answered.
type CompletedPart struct {
	PartNumber int    `json:"partNumber"`
	ETag       string `json:"etag"`
}

// PartURLResponse is the signed URL of one part.
type PartURLResponse struct {
	PartNumber int               `json:"partNumber"`
	Size       int64             `json:"size"`
	URL        string            `json:"url"`
	Method     string            `json:"method"`
	Headers    map[string]string `json:"headers"`
	ExpiresAt  time.Time         `json:"expiresAt"`
}
