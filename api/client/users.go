package client

import (
	"context"
	"net/http"

	"github.com/keyfleet/keyfleet/api"
)

// Health calls GET /healthz: nil if the daemon is up. It needs no token.
func (c *Client) Health(ctx context.Context) error {
	_, err := c.do(ctx, http.MethodGet, "/healthz", nil, nil, nil)
	return err
}

// Ready calls GET /readyz: nil if the daemon is ready to serve.
func (c *Client) Ready(ctx context.Context) error {
	_, err := c.do(ctx, http.MethodGet, "/readyz", nil, nil, nil)
	return err
}

// Me calls GET /v1/me: who the token belongs to.
func (c *Client) Me(ctx context.Context) (api.Me, error) {
	var me api.Me
	_, err := c.do(ctx, http.MethodGet, "/v1/me", nil, nil, &me)
	return me, err
}

// ListUsers calls GET /v1/users and returns one page.
func (c *Client) ListUsers(ctx context.Context, f UserFilter) (api.Page[api.User], error) {
	var pg api.Page[api.User]
	_, err := c.do(ctx, http.MethodGet, "/v1/users", f.values(), nil, &pg)
	return pg, err
}

// CreateUser calls POST /v1/users.
func (c *Client) CreateUser(ctx context.Context, in api.CreateUser) (api.User, error) {
	var u api.User
	_, err := c.do(ctx, http.MethodPost, "/v1/users", nil, in, &u)
	return u, err
}

// GetUser calls GET /v1/users/{user}; user is an id or a username.
func (c *Client) GetUser(ctx context.Context, user string) (api.User, error) {
	var u api.User
	_, err := c.do(ctx, http.MethodGet, p("/v1/users/%s", user), nil, nil, &u)
	return u, err
}

// UpdateUser calls PATCH /v1/users/{user}. Nil fields are left as they are.
func (c *Client) UpdateUser(ctx context.Context, user string, in api.UpdateUser) (api.User, error) {
	var u api.User
	_, err := c.do(ctx, http.MethodPatch, p("/v1/users/%s", user), nil, in, &u)
	return u, err
}

// EnableUser calls POST /v1/users/{user}/enable.
func (c *Client) EnableUser(ctx context.Context, user string) (api.User, error) {
	var u api.User
	_, err := c.do(ctx, http.MethodPost, p("/v1/users/%s/enable", user), nil, nil, &u)
	return u, err
}

// UnlockUser calls POST /v1/users/{user}/unlock: it clears the lockout of
// the user and of all their factors after failed verifications.
func (c *Client) UnlockUser(ctx context.Context, user, reason string) (api.User, error) {
	var u api.User
	_, err := c.do(ctx, http.MethodPost, p("/v1/users/%s/unlock", user), nil, api.StateChange{Reason: reason}, &u)
	return u, err
}

// DisableUser calls POST /v1/users/{user}/disable, which only opens an
// approval request.
func (c *Client) DisableUser(ctx context.Context, user, reason string) (api.Accepted, error) {
	return c.accepted(ctx, http.MethodPost, p("/v1/users/%s/disable", user), api.StateChange{Reason: reason})
}

// ResetUserMFA calls POST /v1/users/{user}/reset-mfa, which only opens an
// approval request.
func (c *Client) ResetUserMFA(ctx context.Context, user, reason string) (api.Accepted, error) {
	return c.accepted(ctx, http.MethodPost, p("/v1/users/%s/reset-mfa", user), api.StateChange{Reason: reason})
}

// DeleteUser calls DELETE /v1/users/{user}, which only opens an approval
// request.
func (c *Client) DeleteUser(ctx context.Context, user, reason string) (api.Accepted, error) {
	return c.accepted(ctx, http.MethodDelete, p("/v1/users/%s", user), api.StateChange{Reason: reason})
}

// ImportUsers calls POST /v1/users/import.
func (c *Client) ImportUsers(ctx context.Context, in api.ImportUsers) (api.ImportResult, error) {
	var out api.ImportResult
	_, err := c.do(ctx, http.MethodPost, "/v1/users/import", nil, in, &out)
	return out, err
}
