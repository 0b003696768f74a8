package client

import (
	"context"
	"net/http"

	"github.com/keyfleet/keyfleet/api"
)

// FirstLoginPass asks for an access pass for the first enrolment of a user
// who has no factor and must enrol (POST /v1/users/{user}/first-login-pass;
// role service). It is a problem (forbidden) when keyfleetd does not issue
// first-login passes, and illegal-transition when the user may not have one.
func (c *Client) FirstLoginPass(ctx context.Context, user string) (api.FirstLoginPass, error) {
	var out api.FirstLoginPass
	_, err := c.do(ctx, http.MethodPost, p("/v1/users/%s/first-login-pass", user), nil, nil, &out)
	return out, err
}

// MFAStatus asks whether a user must enrol (GET /v1/users/{user}/mfa-status):
// the policy's status, deadline, next steps and the user's active factors.
func (c *Client) MFAStatus(ctx context.Context, user string) (api.MFAStatus, error) {
	var out api.MFAStatus
	_, err := c.do(ctx, http.MethodGet, p("/v1/users/%s/mfa-status", user), nil, nil, &out)
	return out, err
}
