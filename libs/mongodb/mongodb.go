// Package mongodb connects to MongoDB (or the embedded FerretDB) the way every
// service does — majority write concern, a bounded server selection — and
// creates indexes idempotently. Services use only the subset of MongoDB that
// FerretDB supports (see FACTS.md), so they behave the same on both.
package mongodb

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/readpref"
	"go.mongodb.org/mongo-driver/v2/mongo/writeconcern"
)

// Connect opens a client to uri with majority write concern and checks it answers.
func Connect(ctx context.Context, uri string) (*mongo.Client, error) {
	opts := options.Client().ApplyURI(uri).
		SetWriteConcern(writeconcern.Majority()).
		SetServerSelectionTimeout(10 * time.Second).
		SetAppName("odavl-sync")
	c, err := mongo.Connect(opts)
	if err != nil {
		return nil, fmt.Errorf("connecting to mongodb: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := c.Ping(pctx, readpref.Primary()); err != nil {
		_ = c.Disconnect(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("pinging mongodb: %w", err)
	}
	return c, nil
}

// Index describes one index of a collection.
type Index struct {
	Collection string
	Name       string
	Keys       any // an ordered bson.D
	Unique     bool
	// Replaces names an earlier index of the collection that this one
	// makes useless; EnsureIndexes drops it once this one exists.
	Replaces string
}

// EnsureIndexes creates each index unless it exists. They are created one at a
// time: FerretDB 1.24 fails a createIndexes command that lists several
// indexes of which one exists already.
//
// The embedded store (our FerretDB fork, patch 3) filters, sorts and counts on
// these indexes as MongoDB does. With ODAVL_STORE_BASELINE=1, the switch
// `make bench-store` uses to measure the store without its patches, only
// unique indexes are created on FerretDB, as before them.
func EnsureIndexes(ctx context.Context, db *mongo.Database, idx []Index) error {
	baseline := false
	if os.Getenv("ODAVL_STORE_BASELINE") == "1" {
		ferret, err := IsFerretDB(ctx, db)
		if err != nil {
			return err
		}
		baseline = ferret
	}
	for _, ix := range idx {
		if baseline && !ix.Unique {
			continue
		}
		m := mongo.IndexModel{Keys: ix.Keys, Options: options.Index().SetName(ix.Name).SetUnique(ix.Unique)}
		if _, err := db.Collection(ix.Collection).Indexes().CreateOne(ctx, m); err != nil {
			return fmt.Errorf("creating index %s.%s: %w", ix.Collection, ix.Name, err)
		}
		if ix.Replaces != "" {
			err := db.Collection(ix.Collection).Indexes().DropOne(ctx, ix.Replaces)
			var ce mongo.CommandError
			if err != nil && !(errors.As(err, &ce) && (ce.Code == indexNotFound || ce.Code == namespaceNotFound)) {
				return fmt.Errorf("dropping index %s.%s (replaced by %s): %w", ix.Collection, ix.Replaces, ix.Name, err)
			}
		}
	}
	return nil
}

// Server error codes EnsureIndexes expects when an index to drop is gone.
const (
	namespaceNotFound = 26
	indexNotFound     = 27
)

// IsFerretDB reports whether db is served by FerretDB (the embedded store)
// rather than MongoDB.
func IsFerretDB(ctx context.Context, db *mongo.Database) (bool, error) {
	var info bson.M
	if err := db.RunCommand(ctx, bson.D{{Key: "buildInfo", Value: 1}}).Decode(&info); err != nil {
		return false, fmt.Errorf("asking the server what it is (buildInfo): %w", err)
	}
	_, ok := info["ferretdbVersion"]
	return ok, nil
}

// Ping reports whether the server answers, for readiness checks.
func Ping(ctx context.Context, c *mongo.Client) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return c.Ping(ctx, readpref.Primary())
}

// TimeRange appends to f the condition that field is in [from, to) (a nil
// bound is open); f comes back as it is when both are nil.
func TimeRange(f bson.D, field string, from, to *time.Time) bson.D {
	if from == nil && to == nil {
		return f
	}
	r := bson.D{}
	if from != nil {
		r = append(r, bson.E{Key: "$gte", Value: *from})
	}
	if to != nil {
		r = append(r, bson.E{Key: "$lt", Value: *to})
	}
	return append(f, bson.E{Key: field, Value: r})
}
