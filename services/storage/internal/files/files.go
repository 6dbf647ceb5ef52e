// Package files is the storage service's business: file records in MongoDB
// (collection storage_files), signed URLs from a blob.Provider, access
// levels, confirmation against the provider, multipart uploads, file
// events, and the cleanup of expired and abandoned files.
package files

import (
	"context"
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/odavl/sync/libs/bus"
	"github.com/odavl/sync/libs/events"
	"github.com/odavl/sync/libs/mongodb"
	"github.com/odavl/sync/libs/rpc"
	"github.com/odavl/sync/services/storage/internal/blob"
)

// Collection holds the file records.
const Collection = "storage_files"

// PartSize is the size of every part of a multipart upload but the last.
const PartSize = 5 << 20

// Options configure the files service.
type Options struct {
	// APIURL prefixes fileUrl (the gateway's address); empty: a relative URL.
	APIURL string
	// DefaultRetention keeps files that long when the request names none; 0 keeps them.
	DefaultRetention time.Duration
	// PendingGrace is how long after its upload URL expired a pending file
	// is kept before the cleanup drops it.
	PendingGrace time.Duration
}

// Files serves the storage requests.
type Files struct {
	log  *slog.Logger
	coll *mongo.Collection
	p    blob.Provider
	js   jetstream.JetStream
	opts Options
	now  func() time.Time
}

// New returns the files service over db's storage_files collection.
func New(log *slog.Logger, db *mongo.Database, p blob.Provider, js jetstream.JetStream, opts Options) *Files {
	return &Files{log: log, coll: db.Collection(Collection), p: p, js: js, opts: opts, now: time.Now}
}

// Indexes are the collection's indexes.
var Indexes = []mongodb.Index{
	{Collection: Collection, Name: "tenant_created", Keys: bson.D{{Key: "organizationId", Value: 1}, {Key: "projectId", Value: 1}, {Key: "createdAt", Value: -1}}},
	{Collection: Collection, Name: "status_expires", Keys: bson.D{{Key: "status", Value: 1}, {Key: "expiresAt", Value: 1}}},
}

// record is a file record.
type record struct {
	ID             string     `bson:"_id"`
	OrganizationID string     `bson:"organizationId"`
	ProjectID      string     `bson:"projectId"`
	UploaderKeyID  string     `bson:"uploaderKeyId"`
	Name           string     `bson:"name"`
	OriginalName   string     `bson:"originalName"`
	ContentType    string     `bson:"contentType"`
	Size           int64      `bson:"size"`
	AccessLevel    string     `bson:"accessLevel"`
	Status         string     `bson:"status"`
	Generated      bool       `bson:"generated,omitempty"`
	Key            string     `bson:"key"`
	UploadID       string     `bson:"uploadId,omitempty"`
	Parts          int        `bson:"parts,omitempty"`
	DownloadCount  int64      `bson:"downloadCount"`
	Downloads      int64      `bson:"downloads"`
	CreatedAt      time.Time  `bson:"createdAt"`
	UploadBy       time.Time  `bson:"uploadBy"`
	UploadedAt     *time.Time `bson:"uploadedAt,omitempty"`
	ExpiresAt      *time.Time `bson:"expiresAt,omitempty"`
}

// fileURL is the permanent URL of a file: for a PUBLIC file one that needs
// no key (PublicPath), otherwise the authenticated API route; both redirect
// to a fresh signed download URL.
func (f *Files) fileURL(id, access string) string {
	base := strings.TrimRight(f.opts.APIURL, "/")
	if access == rpc.AccessPublic {
		return base + PublicPath + id
	}
	return base + "/api/v1/storage/files/" + id + "/content"
}

// PublicPath prefixes the keyless permanent URLs of PUBLIC files.
const PublicPath = "/public/files/"

func (f *Files) view(r record) rpc.File {
	status := r.Status
	return rpc.File{
		ID: r.ID, OrganizationID: r.OrganizationID, ProjectID: r.ProjectID, UploaderKeyID: r.UploaderKeyID,
		Name: r.Name, OriginalName: r.OriginalName, ContentType: r.ContentType, Size: r.Size,
		AccessLevel: r.AccessLevel, Status: status, DownloadCount: r.DownloadCount, Downloads: r.Downloads,
		Multipart: r.UploadID != "", FileURL: f.fileURL(r.ID, r.AccessLevel),
		CreatedAt: r.CreatedAt, UploadedAt: r.UploadedAt, ExpiresAt: r.ExpiresAt,
	}
}

func newID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return "file_" + hex.EncodeToString(b)
}

var fileIDRE = regexp.MustCompile(`^file_[0-9a-f]{32}$`)

func checkCaller(c rpc.Caller) error {
	var fe []rpc.FieldError
	if !events.ValidToken(c.OrganizationID) {
		fe = append(fe, rpc.FieldError{Field: "organizationId", Message: "must be 1-64 letters, digits, '-' or '_'"})
	}
	if !events.ValidToken(c.ProjectID) {
		fe = append(fe, rpc.FieldError{Field: "projectId", Message: "must be 1-64 letters, digits, '-' or '_'"})
	}
	if c.KeyID == "" {
		fe = append(fe, rpc.FieldError{Field: "keyId", Message: "is required"})
	}
	if len(fe) > 0 {
		return &rpc.Error{Status: http.StatusBadRequest, Message: "invalid caller", Fields: fe}
	}
	return nil
}

func badRequest(msg string, fe []rpc.FieldError) error {
	return &rpc.Error{Status: http.StatusBadRequest, Message: msg, Fields: fe}
}

// newRecord validates req and builds the pending record of a new file.
func (f *Files) newRecord(req *rpc.UploadURLRequest, multipart bool) (record, error) {
	if err := checkCaller(req.Caller); err != nil {
		return record{}, err
	}
	if fe := validate(req, multipart); len(fe) > 0 {
		return record{}, badRequest(fmt.Sprintf("%d invalid field(s) in the upload request", len(fe)), fe)
	}
	now := f.now().UTC()
	id := newID()
	r := record{
		ID: id, OrganizationID: req.OrganizationID, ProjectID: req.ProjectID, UploaderKeyID: req.KeyID,
		Name: sanitize(req.Filename), OriginalName: req.Filename, ContentType: req.ContentType, Size: req.Size,
		AccessLevel: req.AccessLevel, Status: rpc.FilePending, Generated: req.Generated,
		Key:       req.OrganizationID + "/" + req.ProjectID + "/" + id,
		CreatedAt: now, UploadBy: now.Add(time.Duration(req.ExpiresIn) * time.Second),
	}
	retain := time.Duration(req.RetainFor) * time.Second
	if retain == 0 {
		retain = f.opts.DefaultRetention
	}
	if retain > 0 {
		exp := now.Add(retain)
		r.ExpiresAt = &exp
	}
	return r, nil
}

// UploadURL records a pending file and signs its upload URL.
func (f *Files) UploadURL(ctx context.Context, req rpc.UploadURLRequest) (rpc.UploadURLResponse, error) {
	r, err := f.newRecord(&req, false)
	if err != nil {
		return rpc.UploadURLResponse{}, err
	}
	s, err := f.p.PresignPut(ctx, r.Key, blob.PutParams{ContentType: r.ContentType, Size: r.Size, Expires: time.Duration(req.ExpiresIn) * time.Second})
	if err != nil {
		return rpc.UploadURLResponse{}, err
	}
	if _, err := f.coll.InsertOne(ctx, r); err != nil {
		return rpc.UploadURLResponse{}, fmt.Errorf("storing file record: %w", err)
	}
	return rpc.UploadURLResponse{
		UploadURL: s.URL, FileURL: f.fileURL(r.ID, r.AccessLevel), FileID: r.ID, ExpiresAt: s.ExpiresAt,
		Instructions: rpc.UploadInstructions{Method: s.Method, Headers: s.Headers},
	}, nil
}

func (f *Files) load(ctx context.Context, id string) (record, error) {
	if !fileIDRE.MatchString(id) {
		return record{}, &rpc.Error{Status: http.StatusBadRequest, Message: "invalid file id", Fields: []rpc.FieldError{{Field: "fileId", Message: "must be file_ and 32 hex digits"}}}
	}
	var r record
	err := f.coll.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&r)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return record{}, rpc.NotFound("no file %s", id)
	}
	if err != nil {
		return record{}, fmt.Errorf("loading file %s: %w", id, err)
	}
	return r, nil
}

// sameProject reports whether the caller acts for the file's project.
func sameProject(c rpc.Caller, r record) bool {
	return c.OrganizationID == r.OrganizationID && c.ProjectID == r.ProjectID
}

// mayRead applies the file's access level to the caller.
func mayRead(c rpc.Caller, r record) bool {
	switch r.AccessLevel {
	case rpc.AccessPublic:
		return true
	case rpc.AccessOrganization:
		return c.OrganizationID == r.OrganizationID
	case rpc.AccessProject:
		return sameProject(c, r)
	default: // PRIVATE
		return sameProject(c, r) && c.KeyID == r.UploaderKeyID
	}
}

// loadFor loads a file of the caller's own project (others' are 404).
func (f *Files) loadFor(ctx context.Context, c rpc.Caller, id string) (record, error) {
	r, err := f.load(ctx, id)
	if err != nil {
		return r, err
	}
	if !sameProject(c, r) {
		return record{}, rpc.NotFound("no file %s", id)
	}
	return r, nil
}

// confirm checks a pending file against the provider: it becomes UPLOADED
// only when the object is there with the declared size and content type.
// An object that differs is deleted and the file stays pending.
func (f *Files) confirm(ctx context.Context, r record, checksum string) (record, error) {
	if r.Status == rpc.FileUploaded {
		return r, nil
	}
	info, err := f.p.Stat(ctx, r.Key)
	if errors.Is(err, blob.ErrNotFound) {
		return r, rpc.Conflict("file %s has no bytes yet: upload them to the upload URL first", r.ID)
	}
	if err != nil {
		return r, err
	}
	var wrong []string
	if info.Size != r.Size {
		wrong = append(wrong, fmt.Sprintf("%d bytes instead of the %d declared", info.Size, r.Size))
	}
	if mediaType(info.ContentType) != r.ContentType {
		wrong = append(wrong, fmt.Sprintf("content type %q instead of %q", info.ContentType, r.ContentType))
	}
	if checksum != "" && info.ETag != "" && strings.Contains(info.ETag, "-") && info.ETag != checksum {
		wrong = append(wrong, "a checksum that differs from the parts' ("+info.ETag+", want "+checksum+")")
	}
	if len(wrong) > 0 {
		if err := f.p.Delete(ctx, r.Key); err != nil {
			return r, err
		}
		return r, rpc.Errorf(http.StatusUnprocessableEntity, "the uploaded object has %s; it was deleted: upload the declared file again", strings.Join(wrong, " and "))
	}
	now := f.now().UTC()
	r.Status, r.UploadedAt = rpc.FileUploaded, &now
	if err := f.publish(ctx, r, "uploaded"); err != nil {
		return r, err
	}
	_, err = f.coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: r.ID}, {Key: "status", Value: rpc.FilePending}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "status", Value: rpc.FileUploaded}, {Key: "uploadedAt", Value: now}}}})
	if err != nil {
		return r, fmt.Errorf("marking file %s uploaded: %w", r.ID, err)
	}
	return r, nil
}

// publish announces a file event; its id is the file id and the kind, so
// a repeat inside the stream's dedupe window is dropped.
func (f *Files) publish(ctx context.Context, r record, kind string) error {
	ev, err := events.New(r.ID+"."+kind, events.SourceStorage, events.TypeFileEvent, f.now(), r.OrganizationID, r.ProjectID,
		events.FileChanged{FileID: r.ID, OrganizationID: r.OrganizationID, ProjectID: r.ProjectID, Kind: kind,
			Name: r.Name, ContentType: r.ContentType, Size: r.Size, At: f.now().UTC()})
	if err != nil {
		return err
	}
	ev.Subject = r.ID
	_, err = bus.Publish(ctx, f.js, events.FileEventSubject(r.OrganizationID, r.ProjectID, kind), ev)
	return err
}

// Confirm confirms an upload against the provider.
func (f *Files) Confirm(ctx context.Context, req rpc.FileRequest) (rpc.File, error) {
	r, err := f.loadFor(ctx, req.Caller, req.FileID)
	if err != nil {
		return rpc.File{}, err
	}
	if r.UploadID != "" && r.Status == rpc.FilePending {
		return rpc.File{}, rpc.Conflict("file %s is a multipart upload: complete it instead", r.ID)
	}
	r, err = f.confirm(ctx, r, "")
	if err != nil {
		return rpc.File{}, err
	}
	return f.view(r), nil
}

// Get answers a file record of the caller's project; a pending single
// upload whose bytes have arrived is confirmed on the way.
func (f *Files) Get(ctx context.Context, req rpc.FileRequest) (rpc.File, error) {
	r, err := f.loadFor(ctx, req.Caller, req.FileID)
	if err != nil {
		return rpc.File{}, err
	}
	if r.Status == rpc.FilePending && r.UploadID == "" {
		if c, err := f.confirm(ctx, r, ""); err == nil {
			r = c
		} else if rpc.StatusOf(err) >= 500 {
			return rpc.File{}, err
		}
	}
	return f.view(r), nil
}

func expiresIn(s int) (time.Duration, error) {
	if s == 0 {
		return rpc.DefaultExpiresIn * time.Second, nil
	}
	if s < rpc.MinExpiresIn || s > rpc.MaxExpiresIn {
		return 0, badRequest("invalid expiresIn", []rpc.FieldError{{Field: "expiresIn", Message: "must be 60 to 3600 seconds"}})
	}
	return time.Duration(s) * time.Second, nil
}

// DownloadURL signs a download URL for a caller the access level admits,
// and counts it.
func (f *Files) DownloadURL(ctx context.Context, req rpc.FileRequest) (rpc.DownloadURLResponse, error) {
	exp, err := expiresIn(req.ExpiresIn)
	if err != nil {
		return rpc.DownloadURLResponse{}, err
	}
	r, err := f.load(ctx, req.FileID)
	if err != nil {
		return rpc.DownloadURLResponse{}, err
	}
	if !mayRead(req.Caller, r) {
		if !sameProject(req.Caller, r) {
			// Another tenant learns nothing of a file it may not read: the
			// answer is an unknown id's.
			return rpc.DownloadURLResponse{}, rpc.NotFound("no file %s", req.FileID)
		}
		return rpc.DownloadURLResponse{}, rpc.Forbidden("file %s is %s: this key may not download it", r.ID, r.AccessLevel)
	}
	return f.download(ctx, r, exp)
}

// PublicDownloadURL signs a short download URL of a PUBLIC file for anyone
// with its permanent link; any other file is not found.
func (f *Files) PublicDownloadURL(ctx context.Context, id string) (rpc.DownloadURLResponse, error) {
	r, err := f.load(ctx, id)
	if err != nil || r.AccessLevel != rpc.AccessPublic {
		return rpc.DownloadURLResponse{}, rpc.NotFound("no public file %s", id)
	}
	return f.download(ctx, r, 5*time.Minute)
}

func (f *Files) download(ctx context.Context, r record, exp time.Duration) (rpc.DownloadURLResponse, error) {
	var err error
	if r.Status != rpc.FileUploaded {
		if r.UploadID != "" {
			return rpc.DownloadURLResponse{}, rpc.Conflict("file %s is not uploaded yet: complete the multipart upload", r.ID)
		}
		if r, err = f.confirm(ctx, r, ""); err != nil {
			return rpc.DownloadURLResponse{}, err
		}
	}
	disp := "inline"
	if r.Generated || r.ContentType == "text/html" {
		disp = "attachment"
	}
	s, err := f.p.PresignGet(ctx, r.Key, blob.GetParams{Expires: exp, ContentType: r.ContentType,
		ContentDisposition: mime.FormatMediaType(disp, map[string]string{"filename": r.Name})})
	if err != nil {
		return rpc.DownloadURLResponse{}, err
	}
	if _, err := f.coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: r.ID}}, bson.D{{Key: "$inc", Value: bson.D{{Key: "downloadCount", Value: 1}}}}); err != nil {
		return rpc.DownloadURLResponse{}, fmt.Errorf("counting download: %w", err)
	}
	return rpc.DownloadURLResponse{DownloadURL: s.URL, FileID: r.ID, ExpiresAt: s.ExpiresAt}, nil
}

// Downloaded counts one download served by the local provider.
func (f *Files) Downloaded(ctx context.Context, key string) {
	id := key[strings.LastIndexByte(key, '/')+1:]
	if _, err := f.coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}}, bson.D{{Key: "$inc", Value: bson.D{{Key: "downloads", Value: 1}}}}); err != nil {
		f.log.Warn("counting served download", "fileId", id, "err", err)
	}
}

// List answers a page of the caller's project's files, newest first.
func (f *Files) List(ctx context.Context, req rpc.ListFilesRequest) (rpc.ListFilesResponse, error) {
	if err := checkCaller(rpc.Caller{Tenant: req.Tenant, KeyID: req.KeyID}); err != nil {
		return rpc.ListFilesResponse{}, err
	}
	if req.Limit <= 0 || req.Limit > 100 {
		req.Limit = 20
	}
	if req.Offset < 0 {
		req.Offset = 0
	}
	filter := bson.D{{Key: "organizationId", Value: req.OrganizationID}, {Key: "projectId", Value: req.ProjectID}}
	if req.Status != "" {
		filter = append(filter, bson.E{Key: "status", Value: req.Status})
	}
	if req.ContentType != "" {
		filter = append(filter, bson.E{Key: "contentType", Value: req.ContentType})
	}
	total, err := f.coll.CountDocuments(ctx, filter)
	if err != nil {
		return rpc.ListFilesResponse{}, fmt.Errorf("counting files: %w", err)
	}
	cur, err := f.coll.Find(ctx, filter, options.Find().SetSort(bson.D{{Key: "createdAt", Value: -1}, {Key: "_id", Value: 1}}).SetSkip(int64(req.Offset)).SetLimit(int64(req.Limit)))
	if err != nil {
		return rpc.ListFilesResponse{}, fmt.Errorf("listing files: %w", err)
	}
	var rs []record
	if err := cur.All(ctx, &rs); err != nil {
		return rpc.ListFilesResponse{}, fmt.Errorf("listing files: %w", err)
	}
	out := rpc.ListFilesResponse{Items: make([]rpc.File, len(rs)), Total: total, Limit: req.Limit, Offset: req.Offset}
	for i, r := range rs {
		out.Items[i] = f.view(r)
	}
	return out, nil
}

// Delete removes a file from the provider and the records. A PRIVATE file
// only its uploader may delete.
func (f *Files) Delete(ctx context.Context, req rpc.FileRequest) (rpc.File, error) {
	r, err := f.loadFor(ctx, req.Caller, req.FileID)
	if err != nil {
		return rpc.File{}, err
	}
	if r.AccessLevel == rpc.AccessPrivate && req.KeyID != r.UploaderKeyID {
		return rpc.File{}, rpc.Forbidden("file %s is PRIVATE: only the key that uploaded it may delete it", r.ID)
	}
	if err := f.remove(ctx, r, "deleted"); err != nil {
		return rpc.File{}, err
	}
	r.Status = rpc.FileDeleted
	return f.view(r), nil
}

// remove deletes the object (or aborts the multipart upload), announces
// kind for an uploaded file, and deletes the record.
func (f *Files) remove(ctx context.Context, r record, kind string) error {
	if r.UploadID != "" && r.Status == rpc.FilePending {
		if err := f.p.AbortMultipart(ctx, r.Key, r.UploadID); err != nil {
			return err
		}
	}
	del := f.p.Delete
	if rt, ok := f.p.(blob.Retirer); ok {
		del = rt.Retire
	}
	if err := del(ctx, r.Key); err != nil {
		return err
	}
	if r.Status == rpc.FileUploaded && kind != "" {
		if err := f.publish(ctx, r, kind); err != nil {
			return err
		}
	}
	if _, err := f.coll.DeleteOne(ctx, bson.D{{Key: "_id", Value: r.ID}}); err != nil {
		return fmt.Errorf("deleting file record %s: %w", r.ID, err)
	}
	return nil
}

// Stats counts the project's uploaded files and bytes by content type (one
// accumulator per $group, as FerretDB computes only the first).
func (f *Files) Stats(ctx context.Context, t rpc.Tenant) (rpc.StorageStatsResponse, error) {
	match := bson.D{{Key: "$match", Value: bson.D{{Key: "organizationId", Value: t.OrganizationID}, {Key: "projectId", Value: t.ProjectID}, {Key: "status", Value: rpc.FileUploaded}}}}
	out := rpc.StorageStatsResponse{ByContentType: map[string]rpc.ContentStats{}}
	for _, acc := range []any{1, "$size"} {
		cur, err := f.coll.Aggregate(ctx, mongo.Pipeline{match, {{Key: "$group", Value: bson.D{{Key: "_id", Value: "$contentType"}, {Key: "n", Value: bson.D{{Key: "$sum", Value: acc}}}}}}})
		if err != nil {
			return out, fmt.Errorf("storage stats: %w", err)
		}
		var rows []struct {
			ID string `bson:"_id"`
			N  int64  `bson:"n"`
		}
		if err := cur.All(ctx, &rows); err != nil {
			return out, fmt.Errorf("storage stats: %w", err)
		}
		for _, row := range rows {
			cs := out.ByContentType[row.ID]
			if acc == 1 {
				cs.Files = row.N
				out.TotalFiles += row.N
			} else {
				cs.Bytes = row.N
				out.TotalBytes += row.N
			}
			out.ByContentType[row.ID] = cs
		}
	}
	return out, nil
}

// MultipartInit records a pending multipart file and starts its upload.
func (f *Files) MultipartInit(ctx context.Context, req rpc.UploadURLRequest) (rpc.MultipartResponse, error) {
	r, err := f.newRecord(&req, true)
	if err != nil {
		return rpc.MultipartResponse{}, err
	}
	id, err := f.p.CreateMultipart(ctx, r.Key, r.ContentType)
	if err != nil {
		return rpc.MultipartResponse{}, err
	}
	r.UploadID, r.Parts = id, int((r.Size+PartSize-1)/PartSize)
	if _, err := f.coll.InsertOne(ctx, r); err != nil {
		_ = f.p.AbortMultipart(ctx, r.Key, id)
		return rpc.MultipartResponse{}, fmt.Errorf("storing file record: %w", err)
	}
	return rpc.MultipartResponse{FileID: r.ID, FileURL: f.fileURL(r.ID, r.AccessLevel), UploadID: id, PartSize: PartSize, Parts: r.Parts, ExpiresAt: r.UploadBy}, nil
}

// loadUpload loads a pending multipart upload of the caller's key.
func (f *Files) loadUpload(ctx context.Context, req rpc.PartRequest) (record, error) {
	r, err := f.loadFor(ctx, req.Caller, req.FileID)
	if err != nil {
		return r, err
	}
	if r.UploadID == "" {
		return r, rpc.Conflict("file %s is not a multipart upload", r.ID)
	}
	if r.Status != rpc.FilePending {
		return r, rpc.Conflict("the multipart upload of file %s is complete", r.ID)
	}
	if req.KeyID != r.UploaderKeyID {
		return r, rpc.Forbidden("only the key that started the upload of file %s may send its parts", r.ID)
	}
	return r, nil
}

func (r record) partSize(n int) int64 {
	if n < r.Parts {
		return PartSize
	}
	return r.Size - int64(r.Parts-1)*PartSize
}

// PartURL signs the upload of one part, bound to its size.
func (f *Files) PartURL(ctx context.Context, req rpc.PartRequest) (rpc.PartURLResponse, error) {
	r, err := f.loadUpload(ctx, req)
	if err != nil {
		return rpc.PartURLResponse{}, err
	}
	if req.PartNumber < 1 || req.PartNumber > r.Parts {
		return rpc.PartURLResponse{}, badRequest("invalid part number", []rpc.FieldError{{Field: "partNumber", Message: fmt.Sprintf("must be 1 to %d", r.Parts)}})
	}
	left := r.UploadBy.Sub(f.now())
	if left < time.Second {
		return rpc.PartURLResponse{}, rpc.Errorf(http.StatusGone, "the multipart upload of file %s has expired", r.ID)
	}
	size := r.partSize(req.PartNumber)
	s, err := f.p.PresignPart(ctx, r.Key, r.UploadID, req.PartNumber, size, left)
	if err != nil {
		return rpc.PartURLResponse{}, err
	}
	return rpc.PartURLResponse{PartNumber: req.PartNumber, Size: size, URL: s.URL, Method: s.Method, Headers: s.Headers, ExpiresAt: s.ExpiresAt}, nil
}

// partsChecksum is the S3-style ETag of the assembled object (MD5 of the
// parts' MD5s, then -N) when every part ETag is an MD5; "" otherwise.
func partsChecksum(parts []rpc.CompletedPart) string {
	h := md5.New()
	for _, p := range parts {
		b, err := hex.DecodeString(strings.Trim(p.ETag, `"`))
		if err != nil || len(b) != md5.Size {
			return ""
		}
		h.Write(b)
	}
	return fmt.Sprintf("%s-%d", hex.EncodeToString(h.Sum(nil)), len(parts))
}

// MultipartComplete assembles the parts and confirms the file.
func (f *Files) MultipartComplete(ctx context.Context, req rpc.PartRequest) (rpc.File, error) {
	r, err := f.loadUpload(ctx, req)
	if err != nil {
		return rpc.File{}, err
	}
	seen := make([]bool, r.Parts+1)
	var fe []rpc.FieldError
	parts := make([]blob.Part, 0, len(req.Parts))
	for i, p := range req.Parts {
		switch {
		case p.PartNumber < 1 || p.PartNumber > r.Parts:
			fe = append(fe, rpc.FieldError{Field: fmt.Sprintf("parts[%d].partNumber", i), Message: fmt.Sprintf("must be 1 to %d", r.Parts)})
		case seen[p.PartNumber]:
			fe = append(fe, rpc.FieldError{Field: fmt.Sprintf("parts[%d].partNumber", i), Message: "is listed twice"})
		default:
			seen[p.PartNumber] = true
		}
		if p.ETag == "" && f.p.Name() != "azure" {
			fe = append(fe, rpc.FieldError{Field: fmt.Sprintf("parts[%d].etag", i), Message: "is required: the ETag header the part's upload answered"})
		}
		parts = append(parts, blob.Part{Number: p.PartNumber, ETag: p.ETag})
	}
	if len(fe) == 0 && len(req.Parts) != r.Parts {
		fe = append(fe, rpc.FieldError{Field: "parts", Message: fmt.Sprintf("must list all %d parts", r.Parts)})
	}
	if len(fe) > 0 {
		return rpc.File{}, badRequest("invalid parts", fe)
	}
	sorted := make([]rpc.CompletedPart, r.Parts)
	for _, p := range req.Parts {
		sorted[p.PartNumber-1] = p
	}
	if err := f.p.CompleteMultipart(ctx, r.Key, r.UploadID, r.ContentType, parts); err != nil {
		if errors.Is(err, blob.ErrPartMismatch) {
			return rpc.File{}, badRequest("the parts do not match what was uploaded: "+err.Error(), []rpc.FieldError{{Field: "parts", Message: "each part must be uploaded and listed with the ETag its upload answered"}})
		}
		return rpc.File{}, err
	}
	r, err = f.confirm(ctx, r, partsChecksum(sorted))
	if err != nil {
		return rpc.File{}, err
	}
	return f.view(r), nil
}

// MultipartAbort drops an unfinished multipart upload and its record.
func (f *Files) MultipartAbort(ctx context.Context, req rpc.PartRequest) (rpc.File, error) {
	r, err := f.loadUpload(ctx, req)
	if err != nil {
		return rpc.File{}, err
	}
	if err := f.remove(ctx, r, ""); err != nil {
		return rpc.File{}, err
	}
	r.Status = rpc.FileDeleted
	return f.view(r), nil
}
