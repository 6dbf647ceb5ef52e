// Package storage is the storage service of ODAVL Sync: signed upload and
// download URLs on the local disk, S3 or Azure Blob, multipart uploads,
// file records with access levels, download counts and expiry, and the
// file events. It answers over NATS request/reply (the rpc.Storage*
// subjects); the one binary and the service's own binary both go through
// New and Run.
package storage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/odavl/sync/libs/config"
	"github.com/odavl/sync/libs/mongodb"
	"github.com/odavl/sync/libs/rpc"
	"github.com/odavl/sync/services/storage/internal/blob"
	"github.com/odavl/sync/services/storage/internal/files"
)

// Version of the service, reported through micro.
const Version = "0.2.0"

// Providers.
const (
	ProviderLocal = "local"
	ProviderS3    = "s3"
	ProviderAzure = "azure"
)

// Config is the storage service's configuration.
type Config struct {
	// Provider is local, s3 or azure (STORAGE_PROVIDER; when unset, s3 if
	// S3_BUCKET_NAME or AWS_ACCESS_KEY_ID is set, azure if
	// AZURE_STORAGE_ACCOUNT_NAME is, else local).
	Provider string
	// DataDir holds the local provider's blobs and signing key (STORAGE_DATA_DIR).
	DataDir string
	// PublicURL is where clients reach the local provider's /blob/ URLs
	// (STORAGE_PUBLIC_URL): the gateway's address in the one process.
	PublicURL string
	// APIURL is the gateway's address, the prefix of fileUrl (STORAGE_API_URL; default PublicURL).
	APIURL string
	// Addr, when set, is where the service serves the local provider's
	// URLs itself (STORAGE_ADDR), as its own binary does.
	Addr string
	// S3 and Azure configure those providers (AWS_REGION, AWS_ACCESS_KEY_ID,
	// AWS_SECRET_ACCESS_KEY, S3_BUCKET_NAME, S3_ENDPOINT, S3_FORCE_PATH_STYLE;
	// AZURE_STORAGE_ACCOUNT_NAME, AZURE_STORAGE_ACCOUNT_KEY,
	// AZURE_CONTAINER_NAME, AZURE_BLOB_ENDPOINT).
	S3    blob.S3Config
	Azure blob.AzureConfig
	// CleanupInterval is how often expired and abandoned files are removed
	// (STORAGE_CLEANUP_INTERVAL).
	CleanupInterval time.Duration
	// PendingGrace is how long a file whose upload URL expired waits for
	// its bytes before the cleanup drops it (STORAGE_PENDING_GRACE).
	PendingGrace time.Duration
	// DefaultRetention keeps files that long unless a request says
	// otherwise; 0 keeps them (STORAGE_DEFAULT_RETENTION).
	DefaultRetention time.Duration
}

// DefaultConfig is the configuration with every default.
func DefaultConfig() Config {
	return Config{
		Provider: ProviderLocal, S3: blob.S3Config{Region: "us-east-1"}, Azure: blob.AzureConfig{Container: "odavl-sync"},
		CleanupInterval: time.Minute, PendingGrace: 10 * time.Minute,
	}
}

// ConfigFromEnv reads the configuration from the environment.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	r := config.NewReader(getenv)
	c := DefaultConfig()
	c.DataDir = r.String("STORAGE_DATA_DIR", c.DataDir)
	c.PublicURL = r.String("STORAGE_PUBLIC_URL", c.PublicURL)
	c.APIURL = r.String("STORAGE_API_URL", c.APIURL)
	c.Addr = r.String("STORAGE_ADDR", c.Addr)
	c.S3 = blob.S3Config{
		Region:          r.String("AWS_REGION", c.S3.Region),
		AccessKeyID:     r.String("AWS_ACCESS_KEY_ID", ""),
		SecretAccessKey: r.String("AWS_SECRET_ACCESS_KEY", ""),
		Bucket:          r.String("S3_BUCKET_NAME", ""),
		Endpoint:        r.String("S3_ENDPOINT", ""),
		PathStyle:       r.Bool("S3_FORCE_PATH_STYLE", false),
	}
	c.Azure = blob.AzureConfig{
		Account:   r.String("AZURE_STORAGE_ACCOUNT_NAME", ""),
		Key:       r.String("AZURE_STORAGE_ACCOUNT_KEY", ""),
		Container: r.String("AZURE_CONTAINER_NAME", c.Azure.Container),
		Endpoint:  r.String("AZURE_BLOB_ENDPOINT", ""),
	}
	def := ProviderLocal
	s3Set := c.S3.Bucket != "" || c.S3.AccessKeyID != ""
	azSet := c.Azure.Account != ""
	if s3Set && !azSet {
		def = ProviderS3
	} else if azSet && !s3Set {
		def = ProviderAzure
	}
	if r.String("STORAGE_PROVIDER", "") == "" && s3Set && azSet {
		r.Require("STORAGE_PROVIDER (both S3 and Azure variables are set)", "")
	}
	c.Provider = r.OneOf("STORAGE_PROVIDER", def, ProviderLocal, ProviderS3, ProviderAzure)
	switch c.Provider {
	case ProviderS3:
		r.Require("S3_BUCKET_NAME", c.S3.Bucket)
		if c.S3.AccessKeyID != "" {
			r.Require("AWS_SECRET_ACCESS_KEY", c.S3.SecretAccessKey)
		}
	case ProviderAzure:
		r.Require("AZURE_STORAGE_ACCOUNT_NAME", c.Azure.Account)
		r.Require("AZURE_STORAGE_ACCOUNT_KEY", c.Azure.Key)
	}
	c.CleanupInterval = r.Duration("STORAGE_CLEANUP_INTERVAL", c.CleanupInterval)
	c.PendingGrace = r.Duration("STORAGE_PENDING_GRACE", c.PendingGrace)
	c.DefaultRetention = r.Duration("STORAGE_DEFAULT_RETENTION", c.DefaultRetention)
	return c, r.Err()
}

// DownloadOrigin is the origin (scheme://host[:port]) of the signed download
// URLs the configured provider hands out, read from a URL it signs now: the
// one origin a page must allow to show stored files as images. Signing is
// local (no request is sent), so it answers from the configuration alone;
// the local provider's origin is PublicURL's.
func (c Config) DownloadOrigin(ctx context.Context) (string, error) {
	var p blob.Provider
	var err error
	switch c.Provider {
	case ProviderS3:
		p, err = blob.NewS3(c.S3)
	case ProviderAzure:
		p, err = blob.NewAzure(c.Azure)
	default:
		return originOf(c.PublicURL)
	}
	if err != nil {
		return "", err
	}
	signed, err := p.PresignGet(ctx, "origin-probe", blob.GetParams{Expires: time.Minute})
	if err != nil {
		return "", fmt.Errorf("signing a download url: %w", err)
	}
	return originOf(signed.URL)
}

func originOf(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return "", fmt.Errorf("download url %q has no http(s) origin", raw)
	}
	return u.Scheme + "://" + u.Host, nil
}

// LogValue shows the configuration with its secrets masked.
func (c Config) LogValue() slog.Value {
	attrs := []slog.Attr{slog.String("provider", c.Provider), slog.Duration("cleanupInterval", c.CleanupInterval),
		slog.Duration("pendingGrace", c.PendingGrace), slog.Duration("defaultRetention", c.DefaultRetention)}
	switch c.Provider {
	case ProviderLocal:
		attrs = append(attrs, slog.String("dataDir", c.DataDir), slog.String("publicUrl", c.PublicURL), slog.String("addr", c.Addr))
	case ProviderS3:
		attrs = append(attrs, slog.String("region", c.S3.Region), slog.String("bucket", c.S3.Bucket), slog.String("endpoint", c.S3.Endpoint),
			slog.Bool("pathStyle", c.S3.PathStyle), slog.String("accessKeyId", c.S3.AccessKeyID), slog.String("secretAccessKey", config.Mask(c.S3.SecretAccessKey)))
	case ProviderAzure:
		attrs = append(attrs, slog.String("account", c.Azure.Account), slog.String("container", c.Azure.Container),
			slog.String("endpoint", c.Azure.Endpoint), slog.String("accountKey", config.Mask(c.Azure.Key)))
	}
	return slog.GroupValue(attrs...)
}

// Service is a running storage service.
type Service struct {
	log   *slog.Logger
	nc    *nats.Conn
	db    *mongo.Database
	cfg   Config
	p     blob.Provider
	local *blob.Local
	files *files.Files
	ready atomic.Bool
}

// New returns a storage service over the given connections and builds its provider.
func New(log *slog.Logger, nc *nats.Conn, db *mongo.Database, cfg Config) (*Service, error) {
	s := &Service{log: log, nc: nc, db: db, cfg: cfg}
	var err error
	switch cfg.Provider {
	case ProviderS3:
		s.p, err = blob.NewS3(cfg.S3)
	case ProviderAzure:
		s.p, err = blob.NewAzure(cfg.Azure)
	case ProviderLocal, "":
		pub := cfg.PublicURL
		if pub == "" && cfg.Addr != "" {
			host, port, _ := net.SplitHostPort(cfg.Addr)
			if host == "" || host == "0.0.0.0" || host == "::" {
				host = "127.0.0.1"
			}
			pub = "http://" + net.JoinHostPort(host, port)
		}
		if pub == "" {
			return nil, errors.New("the local storage provider needs STORAGE_PUBLIC_URL (or STORAGE_ADDR)")
		}
		s.local, err = blob.NewLocal(cfg.DataDir, pub)
		s.p = s.local
		if s.cfg.APIURL == "" {
			s.cfg.APIURL = pub
		}
	default:
		return nil, fmt.Errorf("unknown storage provider %q", cfg.Provider)
	}
	if err != nil {
		return nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	s.files = files.New(log, db, s.p, js, files.Options{APIURL: s.cfg.APIURL, DefaultRetention: cfg.DefaultRetention, PendingGrace: cfg.PendingGrace})
	if s.local != nil {
		s.local.OnGet = func(key string) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			s.files.Downloaded(ctx, key)
		}
	}
	return s, nil
}

// Ready reports whether the service answers.
func (s *Service) Ready() bool { return s.ready.Load() }

// Status is the answer of the service's status request.
type Status struct {
	Service  string `json:"service"`
	Version  string `json:"version"`
	Provider string `json:"provider"`
}

// Run runs the service until ctx is done.
func (s *Service) Run(ctx context.Context) error {
	s.log.Info("storage service starting", "config", s.cfg)
	ectx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err := s.p.Ensure(ectx)
	if err == nil {
		err = mongodb.EnsureIndexes(ectx, s.db, files.Indexes)
	}
	cancel()
	if err != nil {
		return fmt.Errorf("preparing storage: %w", err)
	}
	const timeout = 30 * time.Second
	f := s.files
	eps := []rpc.Endpoint{
		{Name: "status", Subject: "odavl.storage.v1.status", Handler: rpc.Handler(ctx, s.log, 5*time.Second,
			func(context.Context, struct{}) (Status, error) {
				return Status{Service: "storage", Version: Version, Provider: s.p.Name()}, nil
			})},
		{Name: "upload-url", Subject: rpc.StorageUploadURL, Handler: rpc.Handler(ctx, s.log, timeout, f.UploadURL)},
		{Name: "download-url", Subject: rpc.StorageDownloadURL, Handler: rpc.Handler(ctx, s.log, timeout, f.DownloadURL)},
		{Name: "confirm", Subject: rpc.StorageConfirm, Handler: rpc.Handler(ctx, s.log, timeout, f.Confirm)},
		{Name: "files-get", Subject: rpc.StorageGetFile, Handler: rpc.Handler(ctx, s.log, timeout, f.Get)},
		{Name: "files-list", Subject: rpc.StorageListFiles, Handler: rpc.Handler(ctx, s.log, timeout, f.List)},
		{Name: "files-delete", Subject: rpc.StorageDeleteFile, Handler: rpc.Handler(ctx, s.log, timeout, f.Delete)},
		{Name: "stats", Subject: rpc.StorageStats, Handler: rpc.Handler(ctx, s.log, timeout, f.Stats)},
		{Name: "multipart-init", Subject: rpc.StorageMultipartInit, Handler: rpc.Handler(ctx, s.log, timeout, f.MultipartInit)},
		{Name: "multipart-part", Subject: rpc.StoragePartURL, Handler: rpc.Handler(ctx, s.log, timeout, f.PartURL)},
		{Name: "multipart-complete", Subject: rpc.StorageMultipartDone, Handler: rpc.Handler(ctx, s.log, 2*time.Minute, f.MultipartComplete)},
		{Name: "multipart-abort", Subject: rpc.StorageMultipartDrop, Handler: rpc.Handler(ctx, s.log, timeout, f.MultipartAbort)},
		{Name: "public-url", Subject: rpc.StoragePublicURL, Handler: rpc.Handler(ctx, s.log, timeout,
			func(ctx context.Context, req rpc.FileRequest) (rpc.DownloadURLResponse, error) {
				return f.PublicDownloadURL(ctx, req.FileID)
			})},
		{Name: "cleanup", Subject: rpc.StorageCleanup, Handler: rpc.Handler(ctx, s.log, 2*time.Minute,
			func(ctx context.Context, _ struct{}) (rpc.CleanupResponse, error) { return f.Cleanup(ctx) })},
	}
	svc, err := rpc.AddService(s.nc, "storage", Version, "ODAVL Sync storage", eps)
	if err != nil {
		return err
	}
	defer func() { _ = svc.Stop() }()

	var hs *http.Server
	if s.cfg.Addr != "" && s.local != nil {
		ln, err := net.Listen("tcp", s.cfg.Addr)
		if err != nil {
			return fmt.Errorf("STORAGE_ADDR: %w", err)
		}
		mux := http.NewServeMux()
		mux.Handle("/blob/", s.local.Handler())
		mux.HandleFunc("GET "+files.PublicPath+"{id}", s.publicFile)
		hs = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = hs.Serve(ln) }()
		s.log.Info("storage serving blobs", "addr", ln.Addr().String())
	}

	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(s.cfg.CleanupInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
				if _, err := f.Cleanup(cctx); err != nil && ctx.Err() == nil {
					s.log.Error("storage cleanup", "err", err)
				}
				cancel()
			}
		}
	}()

	s.ready.Store(true)
	s.log.Info("storage service ready", "provider", s.p.Name())
	<-ctx.Done()
	s.ready.Store(false)
	<-done
	if hs != nil {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = hs.Shutdown(sctx)
	}
	return nil
}

// MountHTTP mounts the storage service's own HTTP endpoints (the local
// provider's signed blob URLs under /blob/) on the gateway's router, for
// the one process. Other providers serve their URLs themselves. The
// permanent links of PUBLIC files are the gateway's own route (it asks
// rpc.StoragePublicURL), so they work with the services split too.
func (s *Service) MountHTTP(r *gin.Engine) {
	if s.local == nil {
		return
	}
	h := gin.WrapH(s.local.Handler())
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPut, http.MethodPost, http.MethodDelete} {
		r.Handle(m, "/blob/*key", h)
	}
}

// publicFile redirects the permanent link of a PUBLIC file, which needs no
// key, to a fresh signed download URL.
func (s *Service) publicFile(w http.ResponseWriter, r *http.Request) {
	id := strings.TrimPrefix(r.URL.Path, files.PublicPath)
	d, err := s.files.PublicDownloadURL(r.Context(), id)
	if err != nil {
		status := rpc.StatusOf(err)
		if status >= 500 {
			s.log.Error("public file", "fileId", id, "err", err)
		} else {
			status = http.StatusNotFound
		}
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(status)
		b, _ := json.Marshal(map[string]any{"type": "https://odavl.dev/problems/not-found", "title": http.StatusText(status), "status": status, "detail": "no public file " + id, "instance": r.URL.Path})
		_, _ = w.Write(b)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, d.DownloadURL, http.StatusFound)
}
