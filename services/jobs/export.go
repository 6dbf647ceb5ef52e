package jobs

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/nats-io/nats.go/micro"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/odavl/sync/libs/events"
	"github.com/odavl/sync/libs/rpc"
	"github.com/odavl/sync/services/jobs/internal/results"
)

// exportEndpoints are the requests other services read the jobs service's
// source documents through (the stats rebuild).
func (s *Service) exportEndpoints(ctx context.Context) []rpc.Endpoint {
	return []rpc.Endpoint{{Name: "results-export", Subject: rpc.JobsExportResults, Handler: micro.HandlerFunc(func(r micro.Request) {
		var req rpc.ExportRequest
		if len(r.Data()) > 0 {
			if err := json.Unmarshal(r.Data(), &req); err != nil {
				b, _ := json.Marshal(rpc.StreamBatch[rpc.ExportedResult]{Error: rpc.BadRequest("decoding request: %v", err)})
				_ = s.nc.Publish(r.Reply(), b)
				return
			}
		}
		size := req.BatchSize
		if size <= 0 {
			size = 500
		}
		size = min(size, 2000)
		// Streaming outlives the micro handler: run it aside so the endpoint keeps answering.
		go func() {
			if err := rpc.ServeStream(ctx, s.nc, r.Reply(), s.exportResults(size, req.OrganizationID)); err != nil {
				s.log.Warn("results export ended", "err", err)
			}
		}()
	})}}
}

// exportResults returns the batches of every result of every product (of
// org's only when it is set), each product's collection read with one
// cursor (a paged query per batch would scan the collection again each time
// on the embedded store).
func (s *Service) exportResults(size int, org string) func(ctx context.Context) ([]rpc.ExportedResult, bool, error) {
	products := append([]events.Product(nil), events.Products...)
	filter := bson.D{}
	if org != "" {
		filter = bson.D{{Key: "organizationId", Value: org}}
	}
	var cur *mongo.Cursor
	return func(ctx context.Context) ([]rpc.ExportedResult, bool, error) {
		out := make([]rpc.ExportedResult, 0, size)
		for len(out) < size {
			if cur == nil {
				if len(products) == 0 {
					return out, true, nil
				}
				c, err := s.db.Collection(results.Collection(products[0])).Find(ctx, filter, options.Find().SetBatchSize(int32(size)))
				if err != nil {
					return nil, false, fmt.Errorf("exporting %s results: %w", products[0], err)
				}
				cur, products = c, products[1:]
			}
			if !cur.Next(ctx) {
				err := cur.Err()
				_ = cur.Close(ctx)
				cur = nil
				if err != nil {
					return nil, false, fmt.Errorf("reading results: %w", err)
				}
				continue
			}
			var r results.Result
			if err := cur.Decode(&r); err != nil {
				_ = cur.Close(ctx)
				return nil, false, fmt.Errorf("decoding result: %w", err)
			}
			data, err := r.JSON()
			if err != nil {
				_ = cur.Close(ctx)
				return nil, false, err
			}
			out = append(out, rpc.ExportedResult{ID: r.ID, OrganizationID: r.OrganizationID, ProjectID: r.ProjectID,
				Product: string(r.Product), ReceivedAt: r.ReceivedAt, Data: data})
		}
		return out, false, nil
	}
}
