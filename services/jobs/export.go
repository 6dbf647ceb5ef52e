package jobs

import (
	"context"

	"github.com/odavl/sync/libs/rpc"
)

// exportEndpoints are the requests other services read the jobs service's
// source documents through (the stats rebuild).
func (s *Service) exportEndpoints(ctx context.Context) []rpc.Endpoint { return nil }
