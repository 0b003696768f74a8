package client

import (
	"context"
	"net/http"

	"github.com/keyfleet/keyfleet/api"
)

// BeginVerify asks the daemon for a challenge per factor a user may
// answer with (POST /v1/verify/begin; role service or admin).
func (c *Client) BeginVerify(ctx context.Context, in api.BeginVerify) (api.Verification, error) {
	var out api.Verification
	_, err := c.do(ctx, http.MethodPost, "/v1/verify/begin", nil, in, &out)
	return out, err
}

// FinishVerify sends the user's answer (POST /v1/verify/finish). A wrong
// answer is OK false, not an error.
func (c *Client) FinishVerify(ctx context.Context, in api.FinishVerify) (api.VerifyResult, error) {
	var out api.VerifyResult
	_, err := c.do(ctx, http.MethodPost, "/v1/verify/finish", nil, in, &out)
	return out, err
}

// CheckVerify checks a code that needs no challenge (TOTP, HOTP) in one
// call (POST /v1/verify). A wrong code is OK false, not an error; a kind
// that answers a challenge is refused (use BeginVerify and FinishVerify).
func (c *Client) CheckVerify(ctx context.Context, in api.CheckVerify) (api.VerifyResult, error) {
	var out api.VerifyResult
	_, err := c.do(ctx, http.MethodPost, "/v1/verify", nil, in, &out)
	return out, err
}
