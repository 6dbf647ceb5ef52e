// Package client is the Go client of the ODAVL Sync HTTP API: typed requests
// and answers for every public route, errors as values carrying the server's
// problem+json details, and safe retries.
//
// Every upload carries an idempotency key (the natural key of Autopilot and
// Guardian uploads, the SHA-256 of the canonical JSON of an Insight upload),
// so a retry can never store twice. Network errors, 5xx and 429 answers are
// retried with exponential backoff and jitter, honouring Retry-After; other
// 4xx answers are returned at once as an *Error. The clock the client waits
// on is injectable, so tests see every wait without sleeping.
//
// The package uses only the standard library, so any Go program imports it
// cheaply. Package spool keeps uploads a client could not deliver.
package client
