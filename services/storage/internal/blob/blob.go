// Package blob is the storage service's view of an object store: signed
// upload and download URLs, multipart uploads, and the few direct calls the
// service makes itself (Stat to confirm an upload, Delete to remove one).
// Three providers implement it: the local disk (URLs signed with
// HMAC-SHA256 and served by the service), S3 (presigned SigV4 URLs) and
// Azure Blob (SAS URLs). One contract suite runs against all three.
package blob

import (
	"context"
	"errors"
	"time"
)

// ErrNotFound is returned by Stat for an object that is not there.
var ErrNotFound = errors.New("object not found")

// Provider is an object store behind signed URLs.
type Provider interface {
	// Name is local, s3 or azure.
	Name() string
	// Ensure makes the store usable (creates the directory, bucket or container).
	Ensure(ctx context.Context) error
	// PresignPut signs one PUT of exactly p.Size bytes of p.ContentType to key.
	PresignPut(ctx context.Context, key string, p PutParams) (Signed, error)
	// PresignGet signs a GET of key.
	PresignGet(ctx context.Context, key string, p GetParams) (Signed, error)
	// Stat describes the object at key, or fails with ErrNotFound.
	Stat(ctx context.Context, key string) (Info, error)
	// Delete removes the object at key; a missing object is no error.
	Delete(ctx context.Context, key string) error

	// CreateMultipart starts a multipart upload of key and returns its id.
	CreateMultipart(ctx context.Context, key, contentType string) (string, error)
	// PresignPart signs the PUT of part n (1-based) of size bytes.
	PresignPart(ctx context.Context, key, uploadID string, n int, size int64, expires time.Duration) (Signed, error)
	// CompleteMultipart assembles the parts, in part-number order.
	CompleteMultipart(ctx context.Context, key, uploadID, contentType string, parts []Part) error
	// AbortMultipart drops an unfinished multipart upload and its parts.
	AbortMultipart(ctx context.Context, key, uploadID string) error
}

// Retirer is a provider that can delete a file's object for good, so that
// an upload URL of it still unexpired stores nothing (the local provider;
// S3 and Azure presigned URLs cannot be withdrawn).
type Retirer interface {
	Retire(ctx context.Context, key string) error
}

// PutParams bind what a signed PUT may send.
type PutParams struct {
	ContentType string
	Size        int64
	Expires     time.Duration
}

// GetParams shape a signed GET and the answer's headers.
type GetParams struct {
	Expires time.Duration
	// ContentType and ContentDisposition override the answer's headers
	// where the provider allows it.
	ContentType        string
	ContentDisposition string
}

// Signed is a signed request: the client sends Method to URL with Headers.
type Signed struct {
	URL       string
	Method    string
	Headers   map[string]string
	ExpiresAt time.Time
}

// Info describes a stored object.
type Info struct {
	Size        int64
	ContentType string
	// ETag is the provider's entity tag, without quotes; for S3 and local
	// multipart objects it is the MD5 of the parts' MD5s, then -N.
	ETag string
}

// Part is an uploaded part of a multipart upload.
type Part struct {
	Number int
	ETag   string
}
