package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/odavl/sync/client/cli"
)

const credentialsFile = "credentials.json"

// credentials is what serve writes for its first user and the CLI reads.
type credentials = cli.Credentials

// The tenant of the first start.
const (
	firstOrganization = "local"
	firstProject      = "default"
)

type keyMaker interface {
	URL() string
	CreateOperatorKey(ctx context.Context, org, project, name string) (string, error)
	EnsureOperatorKey(ctx context.Context, key string) (bool, error)
}

// ensureCredentials keeps the credentials of an earlier start when their key
// is still known (updating the URL), or creates the first tenant and an
// operator key (admin of every organization: the CLI on the server creates
// keys for new organizations with it) and writes them, mode 0600.
func ensureCredentials(ctx context.Context, data string, gw keyMaker) (credentials, bool, error) {
	path := filepath.Join(data, credentialsFile)
	c, err := cli.ReadCredentials(path)
	if err == nil && c.APIKey != "" {
		ok, err := gw.EnsureOperatorKey(ctx, c.APIKey)
		if err != nil {
			return credentials{}, false, err
		}
		if ok {
			c.APIURL = gw.URL()
			return c, false, writeCredentials(path, c)
		}
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return credentials{}, false, err
	}
	key, err := gw.CreateOperatorKey(ctx, firstOrganization, firstProject, "first admin key")
	if err != nil {
		return credentials{}, false, err
	}
	c = credentials{APIURL: gw.URL(), OrganizationID: firstOrganization, ProjectID: firstProject, APIKey: key}
	return c, true, writeCredentials(path, c)
}

func writeCredentials(path string, c credentials) error {
	b, _ := json.MarshalIndent(c, "", "  ")
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("writing credentials: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("writing credentials: %w", err)
	}
	return nil
}
