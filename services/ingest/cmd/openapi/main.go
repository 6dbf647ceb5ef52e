// Command openapi writes the OpenAPI document the gateway serves at
// /api/v1/openapi.json, with the configuration of the environment (as
// ingest reads it), to the file named by -o or to stdout. `make contracts`
// checks it with standard tools. With -asyncapi it also writes the AsyncAPI
// document the gateway serves at /api/v1/asyncapi.json to that file.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/odavl/sync/services/ingest"
)

func main() {
	if err := run(os.Args, os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "openapi:", err)
		os.Exit(1)
	}
}

func run(args []string, getenv func(string) string, stdout io.Writer) error {
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	out := fs.String("o", "", "write the document to this file instead of stdout")
	async := fs.String("asyncapi", "", "also write the AsyncAPI document of the events to this file")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	cfg, err := ingest.ConfigFromEnv(getenv)
	if err != nil {
		return err
	}
	doc, err := ingest.OpenAPIDocument(cfg)
	if err != nil {
		return fmt.Errorf("building the document: %w", err)
	}
	if *async != "" {
		b, err := ingest.AsyncAPIDocument()
		if err != nil {
			return fmt.Errorf("building the asyncapi document: %w", err)
		}
		if err := os.WriteFile(*async, b, 0o644); err != nil {
			return fmt.Errorf("writing the asyncapi document: %w", err)
		}
	}
	if *out == "" {
		_, err = stdout.Write(doc)
		return err
	}
	if err := os.WriteFile(*out, doc, 0o644); err != nil {
		return fmt.Errorf("writing the document: %w", err)
	}
	return nil
}
