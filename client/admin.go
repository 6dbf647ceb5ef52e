package client

import (
	"context"
	"encoding/json"
	"net/http"
	"time"
)

// Alert is a critical alert: one per Insight upload with critical issues.
type Alert struct {
	ID             string    `json:"id"`
	UploadID       string    `json:"uploadId"`
	OrganizationID string    `json:"organizationId"`
	ProjectID      string    `json:"projectId"`
	Critical       int       `json:"critical"`
	Messages       []string  `json:"messages"`
	RaisedAt       time.Time `json:"raisedAt"`
}

// AlertList is a page of alerts, newest first.
type AlertList struct {
	Items  []Alert `json:"items"`
	Total  int64   `json:"total"`
	Limit  int     `json:"limit"`
	Offset int     `json:"offset"`
}

// Alerts returns a page of the project's critical alerts (Limit and Offset
// of o are used).
func (c *Client) Alerts(ctx context.Context, o ListOptions) (*AlertList, error) {
	var l AlertList
	if err := c.getJSON(ctx, "/api/v1/alerts", ListOptions{Limit: o.Limit, Offset: o.Offset, From: o.From, To: o.To}.query(), &l); err != nil {
		return nil, err
	}
	return &l, nil
}

// CreateKeyRequest asks for a new API key (admin scope).
type CreateKeyRequest struct {
	OrganizationID string   `json:"organizationId"`
	ProjectID      string   `json:"projectId"`
	Name           string   `json:"name,omitempty"`
	Scopes         []string `json:"scopes,omitempty"` // sync, admin
}

// CreatedKey is a new key; Key is shown only here.
type CreatedKey struct {
	Key            string    `json:"key"`
	ID             string    `json:"id"`
	OrganizationID string    `json:"organizationId"`
	ProjectID      string    `json:"projectId"`
	Scopes         []string  `json:"scopes"`
	CreatedAt      time.Time `json:"createdAt"`
}

// CreateKey creates an API key for a project of the caller's organization.
func (c *Client) CreateKey(ctx context.Context, r CreateKeyRequest) (*CreatedKey, error) {
	var k CreatedKey
	if err := c.postJSON(ctx, "/api/v1/admin/keys", r, &k); err != nil {
		return nil, err
	}
	return &k, nil
}

// Ready asks /readyz once (no retry): nil when the server and everything it
// needs answer.
func (c *Client) Ready(ctx context.Context) error {
	one := NoRetry()
	_, err := c.do(ctx, request{method: http.MethodGet, path: "/readyz", retry: &one}, nil)
	return err
}

// AsyncAPI returns the server's AsyncAPI 3.0 document of the events it
// publishes on NATS (the CloudEvents envelope and data schema of each type).
func (c *Client) AsyncAPI(ctx context.Context) (json.RawMessage, error) {
	var raw json.RawMessage
	if err := c.getJSON(ctx, "/api/v1/asyncapi.json", nil, &raw); err != nil {
		return nil, err
	}
	return raw, nil
}

// OpenAPI returns the server's OpenAPI 3.1 document.
func (c *Client) OpenAPI(ctx context.Context) (json.RawMessage, error) {
	var raw json.RawMessage
	if err := c.getJSON(ctx, "/api/v1/openapi.json", nil, &raw); err != nil {
		return nil, err
	}
	return raw, nil
}
