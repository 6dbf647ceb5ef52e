package jobs

import (
	"context"

	"github.com/odavl/sync/libs/rpc"
)

// queueEndpoints are the job queue's requests (submit, list, control).
func (s *Service) queueEndpoints(ctx context.Context) []rpc.Endpoint { return nil }
