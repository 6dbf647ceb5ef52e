package processor

import "go.mongodb.org/mongo-driver/v2/bson"

// bsonSet builds a $set document from key, value pairs.
func bsonSet(kv ...any) bson.D {
	d := make(bson.D, 0, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		d = append(d, bson.E{Key: kv[i].(string), Value: kv[i+1]})
	}
	return d
}
