package mongodb_test

import (
	"context"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/odavl/sync/libs/mongodb"
	"github.com/odavl/sync/libs/mongotest"
)

// On the embedded store every index is created (patch 3 of the fork reads
// them), unique ones are enforced, and a second run changes nothing.
func TestEnsureIndexesOnFerretDB(t *testing.T) {
	ctx := context.Background()
	mb := mongotest.Start(t)
	ferret, err := mongodb.IsFerretDB(ctx, mb.DB)
	if err != nil || !ferret {
		t.Fatalf("IsFerretDB = %v, %v; want true", ferret, err)
	}
	err = mongodb.EnsureIndexes(ctx, mb.DB, []mongodb.Index{
		{Collection: "c", Name: "by_key", Keys: bson.D{{Key: "key", Value: 1}}, Unique: true},
		{Collection: "c", Name: "by_time", Keys: bson.D{{Key: "at", Value: -1}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	specs, err := mb.DB.Collection("c").Indexes().ListSpecifications(ctx)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, s := range specs {
		names[s.Name] = true
	}
	if !names["by_key"] || !names["by_time"] {
		t.Fatalf("indexes %v: want by_key and by_time", names)
	}
	// An index that replaces another drops it, once; again is a no-op.
	for range 2 {
		if err := mongodb.EnsureIndexes(ctx, mb.DB, []mongodb.Index{
			{Collection: "c", Name: "by_time_key", Keys: bson.D{{Key: "at", Value: -1}, {Key: "key", Value: -1}}, Replaces: "by_time"},
		}); err != nil {
			t.Fatal(err)
		}
	}
	specs, err = mb.DB.Collection("c").Indexes().ListSpecifications(ctx)
	if err != nil {
		t.Fatal(err)
	}
	names = map[string]bool{}
	for _, s := range specs {
		names[s.Name] = true
	}
	if !names["by_time_key"] || names["by_time"] || !names["by_key"] {
		t.Fatalf("indexes %v: want by_time replaced by by_time_key", names)
	}
	c := mb.DB.Collection("c")
	if _, err := c.InsertOne(ctx, bson.D{{Key: "key", Value: "a"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.InsertOne(ctx, bson.D{{Key: "key", Value: "a"}}); err == nil {
		t.Fatal("a second document with the same unique key was accepted")
	}
	// Running it again is fine.
	if err := mongodb.EnsureIndexes(ctx, mb.DB, []mongodb.Index{{Collection: "c", Name: "by_key", Keys: bson.D{{Key: "key", Value: 1}}, Unique: true}}); err != nil {
		t.Fatal(err)
	}
}
