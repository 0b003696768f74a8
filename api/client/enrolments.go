package client

import (
	"context"
	"net/http"

	"github.com/keyfleet/keyfleet/api"
)

// ListEnrolments calls GET /v1/enrolments and returns one page.
func (c *Client) ListEnrolments(ctx context.Context, f EnrolmentFilter) (api.Page[api.Enrolment], error) {
	var pg api.Page[api.Enrolment]
	_, err := c.do(ctx, http.MethodGet, "/v1/enrolments", f.values(), nil, &pg)
	return pg, err
}

// CreateEnrolment calls POST /v1/enrolments.
func (c *Client) CreateEnrolment(ctx context.Context, in api.CreateEnrolment) (api.Enrolment, error) {
	var e api.Enrolment
	_, err := c.do(ctx, http.MethodPost, "/v1/enrolments", nil, in, &e)
	return e, err
}

// GetEnrolment calls GET /v1/enrolments/{id}.
func (c *Client) GetEnrolment(ctx context.Context, id string) (api.Enrolment, error) {
	var e api.Enrolment
	_, err := c.do(ctx, http.MethodGet, p("/v1/enrolments/%s", id), nil, nil, &e)
	return e, err
}

// CancelEnrolment calls DELETE /v1/enrolments/{id}.
func (c *Client) CancelEnrolment(ctx context.Context, id string) (api.Enrolment, error) {
	var e api.Enrolment
	_, err := c.do(ctx, http.MethodDelete, p("/v1/enrolments/%s", id), nil, nil, &e)
	return e, err
}

// CompleteEnrolment calls POST /v1/enrolments/{id}/complete and returns the
// new factor.
func (c *Client) CompleteEnrolment(ctx context.Context, id string, in api.CompleteEnrolment) (api.Factor, error) {
	var f api.Factor
	_, err := c.do(ctx, http.MethodPost, p("/v1/enrolments/%s/complete", id), nil, in, &f)
	return f, err
}

// ListTokens calls GET /v1/tokens and returns one page.
func (c *Client) ListTokens(ctx context.Context, f TokenFilter) (api.Page[api.Token], error) {
	var pg api.Page[api.Token]
	_, err := c.do(ctx, http.MethodGet, "/v1/tokens", f.values(), nil, &pg)
	return pg, err
}

// CreateToken calls POST /v1/tokens. The answer holds the secret, which
// the daemon never shows again.
func (c *Client) CreateToken(ctx context.Context, in api.CreateToken) (api.CreatedToken, error) {
	var t api.CreatedToken
	_, err := c.do(ctx, http.MethodPost, "/v1/tokens", nil, in, &t)
	return t, err
}

// RevokeToken calls DELETE /v1/tokens/{id}.
func (c *Client) RevokeToken(ctx context.Context, id string) (api.Token, error) {
	var t api.Token
	_, err := c.do(ctx, http.MethodDelete, p("/v1/tokens/%s", id), nil, nil, &t)
	return t, err
}
