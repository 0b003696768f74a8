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

// UserResult is the answer to creating or changing a user: the user as it
// stands, and Accepted when part of the change waits for a second person
// (a role beyond "user", or leaving a group or role a stricter rule
// holds); until it is approved the user is without that part.
type UserResult struct {
	api.User
	Accepted *api.Accepted
}

// CreateUser calls POST /v1/users.
func (c *Client) CreateUser(ctx context.Context, in api.CreateUser) (UserResult, error) {
	return c.userChange(ctx, http.MethodPost, "/v1/users", in)
}

// userChange sends a user change answered 200/201 with the user, or 202
// with the request and the user as it stands.
func (c *Client) userChange(ctx context.Context, method, path string, in any) (UserResult, error) {
	var out UserResult
	acc, err := c.orAccepted(ctx, method, path, in, &out.User)
	if err != nil || acc == nil {
		return out, err
	}
	out.Accepted = acc
	if acc.User != nil {
		out.User = *acc.User
	}
	return out, nil
}

// GetUser calls GET /v1/users/{user}; user is an id or a username.
func (c *Client) GetUser(ctx context.Context, user string) (api.User, error) {
	var u api.User
	_, err := c.do(ctx, http.MethodGet, p("/v1/users/%s", user), nil, nil, &u)
	return u, err
}

// UpdateUser calls PATCH /v1/users/{user}. Nil fields are left as they
// are; what waits for a second person is in the result's Accepted.
func (c *Client) UpdateUser(ctx context.Context, user string, in api.UpdateUser) (UserResult, error) {
	return c.userChange(ctx, http.MethodPatch, p("/v1/users/%s", user), in)
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
