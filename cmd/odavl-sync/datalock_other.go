//go:build !unix

package main

// lockDataDir does not lock on systems without flock: serve's data
// directory is for one process, which the unix build enforces.
func lockDataDir(string) (func(), error) { return func() {}, nil }
