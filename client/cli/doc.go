// Package cli holds the client commands of odavl-sync (push, upload,
// status, results, jobs, spool, stats summary and trends): the commands a
// laptop or a CI job runs against a server. The small odavl-sync binary of
// this module (cmd/odavl-sync, `go install`-able) is them alone; the server
// binary adds serve, keys and stats rebuild to the same root.
package cli
