// Package stats is the stats service of ODAVL Sync. Run starts it; the one
// binary and the service's own binary both go through New and Run.
package stats

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/odavl/sync/libs/config"
	"github.com/odavl/sync/libs/rpc"
)

// Version of the service, reported through micro.
const Version = "0.1.0"

// Config is the stats service's configuration.
type Config struct{}

// DefaultConfig is the configuration with every default.
func DefaultConfig() Config { return Config{} }

// ConfigFromEnv reads the configuration from the environment.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	r := config.NewReader(getenv)
	return DefaultConfig(), r.Err()
}

// Service is a running stats service.
type Service struct {
	log   *slog.Logger
	nc    *nats.Conn
	db    *mongo.Database
	cfg   Config
	ready atomic.Bool
}

// New returns a stats service over the given connections.
func New(log *slog.Logger, nc *nats.Conn, db *mongo.Database, cfg Config) (*Service, error) {
	return &Service{log: log, nc: nc, db: db, cfg: cfg}, nil
}

// Ready reports whether the service answers.
func (s *Service) Ready() bool { return s.ready.Load() }

// Status is the answer of the service's status request.
type Status struct {
	Service string `json:"service"`
	Version string `json:"version"`
}

// Run runs the service until ctx is done.
func (s *Service) Run(ctx context.Context) error {
	svc, err := rpc.AddService(s.nc, "stats", Version, "ODAVL Sync stats", []rpc.Endpoint{
		{Name: "status", Subject: "odavl.stats.v1.status", Handler: rpc.Handler(ctx, s.log, 5*time.Second,
			func(context.Context, struct{}) (Status, error) {
				return Status{Service: "stats", Version: Version}, nil
			})},
	})
	if err != nil {
		return err
	}
	defer func() { _ = svc.Stop() }()
	s.ready.Store(true)
	s.log.Info("stats service ready")
	<-ctx.Done()
	s.ready.Store(false)
	return nil
}
