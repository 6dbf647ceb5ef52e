package mongotest_test

import (
	"context"
	"fmt"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/odavl/sync/libs/mongotest"
)

// BenchmarkFindByID measures a lookup and an update by _id in collections of
// growing size: on the embedded store both must stay flat (an index lookup).
func BenchmarkFindByID(b *testing.B) {
	m := mongotest.Start(b)
	ctx := context.Background()
	for _, n := range []int{100, 10000} {
		coll := m.DB.Collection(fmt.Sprintf("c%d", n))
		var docs []any
		for i := 0; i < n; i++ {
			docs = append(docs, bson.D{{Key: "_id", Value: fmt.Sprintf("id-%06d", i)}, {Key: "pad", Value: "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}})
			if len(docs) == 100 || i == n-1 {
				if _, err := coll.InsertMany(ctx, docs); err != nil {
					b.Fatal(err)
				}
				docs = nil
			}
		}
		b.Run(fmt.Sprintf("docs=%d", n), func(b *testing.B) {
			for i := 0; b.Loop(); i++ {
				var out bson.M
				if err := coll.FindOne(ctx, bson.D{{Key: "_id", Value: fmt.Sprintf("id-%06d", i%n)}}).Decode(&out); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("update/docs=%d", n), func(b *testing.B) {
			for i := 0; b.Loop(); i++ {
				if _, err := coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: fmt.Sprintf("id-%06d", i%n)}}, bson.D{{Key: "$inc", Value: bson.D{{Key: "n", Value: 1}}}}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
