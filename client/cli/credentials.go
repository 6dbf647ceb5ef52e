package cli

import (
	"encoding/json"
	"fmt"
	"os"
)

// Credentials is what serve writes for its first user (credentials.json)
// and --credentials reads.
type Credentials struct {
	APIURL         string `json:"apiUrl"`
	OrganizationID string `json:"organizationId"`
	ProjectID      string `json:"projectId"`
	APIKey         string `json:"apiKey"`
}

// ReadCredentials reads a credentials.json.
func ReadCredentials(path string) (Credentials, error) {
	var c Credentials
	b, err := os.ReadFile(path)
	if err != nil {
		return c, err
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("reading %s: %w", path, err)
	}
	return c, nil
}
