// Package events is the ODAVL Sync event contract: the CloudEvents 1.0
// envelope every service publishes, the versioned event types, the NATS
// subjects (which carry the tenant) and streams, and the payload types of
// the three products.
//
// A type string carries its version (dev.odavl.sync.insight.received.v1). A
// breaking change is a new type and a new subject version, never an edit of
// an existing one; the golden files in testdata freeze the JSON of each.
package events
