package client

import (
	"context"
	"net/http"

	"github.com/keyfleet/keyfleet/api"
)

// DirectoryStatus calls GET /v1/directory/status: each directory source's
// last sync, counts, errors and drift.
func (c *Client) DirectoryStatus(ctx context.Context) (api.DirectoryOverview, error) {
	var out api.DirectoryOverview
	_, err := c.do(ctx, http.MethodGet, "/v1/directory/status", nil, nil, &out)
	return out, err
}

// SyncDirectory calls POST /v1/directory/sync: the LDAP sync now, or a dry
// run of it.
func (c *Client) SyncDirectory(ctx context.Context, in api.DirectorySync) (api.DirectorySyncReport, error) {
	var out api.DirectorySyncReport
	_, err := c.do(ctx, http.MethodPost, "/v1/directory/sync", nil, in, &out)
	return out, err
}

// LinkUser calls POST /v1/directory/links: a user made by hand handed to a
// directory source.
func (c *Client) LinkUser(ctx context.Context, in api.DirectoryLink) (api.User, error) {
	var out api.User
	_, err := c.do(ctx, http.MethodPost, "/v1/directory/links", nil, in, &out)
	return out, err
}

// UnlinkUser calls DELETE /v1/directory/links/{user}.
func (c *Client) UnlinkUser(ctx context.Context, user string) (api.User, error) {
	var out api.User
	_, err := c.do(ctx, http.MethodDelete, p("/v1/directory/links/%s", user), nil, nil, &out)
	return out, err
}
