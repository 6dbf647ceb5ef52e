package files

import (
	"context"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/odavl/sync/libs/rpc"
)

// cleanupBatch bounds the records one round looks at per kind.
const cleanupBatch = 100

// Cleanup is one round of the scheduled housekeeping (there are no TTL
// indexes in the embedded store):
//   - uploaded files past their expiry leave the provider and the records,
//     announced as expired;
//   - pending files whose upload URL expired more than PendingGrace ago are
//     confirmed if their bytes are there (nothing sent is lost), otherwise
//     their multipart upload is aborted and the record dropped.
//
// Every step is idempotent, so two instances may run it at once.
func (f *Files) Cleanup(ctx context.Context) (rpc.CleanupResponse, error) {
	var out rpc.CleanupResponse
	now := f.now().UTC()
	expired, err := f.find(ctx, bson.D{{Key: "status", Value: rpc.FileUploaded}, {Key: "expiresAt", Value: bson.D{{Key: "$lte", Value: now}}}})
	if err != nil {
		return out, err
	}
	for _, r := range expired {
		if err := f.remove(ctx, r, "expired"); err != nil {
			return out, fmt.Errorf("removing expired file %s: %w", r.ID, err)
		}
		out.Expired++
	}
	stale, err := f.find(ctx, bson.D{{Key: "status", Value: rpc.FilePending}, {Key: "uploadBy", Value: bson.D{{Key: "$lte", Value: now.Add(-f.opts.PendingGrace)}}}})
	if err != nil {
		return out, err
	}
	for _, r := range stale {
		if r.UploadID == "" {
			if _, err := f.confirm(ctx, r, ""); err == nil {
				out.Confirmed++
				continue
			} else if rpc.StatusOf(err) >= 500 {
				return out, fmt.Errorf("confirming stale file %s: %w", r.ID, err)
			}
		}
		if err := f.remove(ctx, r, ""); err != nil {
			return out, fmt.Errorf("dropping abandoned file %s: %w", r.ID, err)
		}
		out.Abandoned++
	}
	if out.Expired+out.Abandoned+out.Confirmed > 0 {
		f.log.Info("storage cleanup", "expired", out.Expired, "abandoned", out.Abandoned, "confirmed", out.Confirmed)
	}
	return out, nil
}

func (f *Files) find(ctx context.Context, filter bson.D) ([]record, error) {
	cur, err := f.coll.Find(ctx, filter, options.Find().SetLimit(cleanupBatch))
	if err != nil {
		return nil, fmt.Errorf("finding files to clean up: %w", err)
	}
	var rs []record
	if err := cur.All(ctx, &rs); err != nil {
		return nil, fmt.Errorf("finding files to clean up: %w", err)
	}
	return rs, nil
}
