package client

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"

	"github.com/keyfleet/keyfleet/api"
)

// Fresh proofs of possession (docs/security.md, "Fresh proof"). An action
// that needs one answers 403 with problem type proof-required
// ([SlugProofRequired]) until it comes with a proof: ask for a challenge
// bound to the action with [Client.BeginProof], have the person's own key
// answer it (keyfleet-agent prove), and send the action again through
// [Client.WithProof].

// EncodeProof is the Keyfleet-Proof header value of p: base64url, without
// padding, of its JSON.
func EncodeProof(p api.Proof) string {
	b, _ := json.Marshal(p) // api.Proof always marshals
	return base64.RawURLEncoding.EncodeToString(b)
}

// WithProof returns a copy of c that sends p in the Keyfleet-Proof header
// with each request. A proof allows one action, once: use the copy for
// that action's request only. c itself is unchanged.
func (c *Client) WithProof(p api.Proof) *Client {
	cp := *c
	cp.proof = EncodeProof(p)
	return &cp
}

// BeginProof calls POST /v1/proofs: a challenge for the caller's own
// factors, bound to one action. in.Request must be the JSON body the
// action will send. Errors: a problem of type no-usable-factor when the
// caller has no factor that may prove the action.
func (c *Client) BeginProof(ctx context.Context, in api.ProofRequest) (api.ProofChallenge, error) {
	var out api.ProofChallenge
	_, err := c.do(ctx, http.MethodPost, "/v1/proofs", nil, in, &out)
	return out, err
}

// BeginLogin calls POST /v1/login/begin, which needs no token: a challenge
// for the named person's own security keys, bound to the token the login
// will make.
func (c *Client) BeginLogin(ctx context.Context, in api.LoginBegin) (api.ProofChallenge, error) {
	var out api.ProofChallenge
	_, err := c.do(ctx, http.MethodPost, "/v1/login/begin", nil, in, &out)
	return out, err
}

// Login calls POST /v1/login with the key's answer to BeginLogin's
// challenge: the person's new token, whose secret is in the answer only.
// in must say what BeginLogin's did.
func (c *Client) Login(ctx context.Context, in api.Login, proof api.Proof) (api.CreatedToken, error) {
	var out api.CreatedToken
	_, err := c.WithProof(proof).do(ctx, http.MethodPost, "/v1/login", nil, in, &out)
	return out, err
}

// PrivilegedReport calls GET /v1/reports/privileged: everyone holding a
// role beyond "user", who granted and approved it, and when they were
// last active.
func (c *Client) PrivilegedReport(ctx context.Context) ([]api.PrivilegedHolder, error) {
	var out api.Page[api.PrivilegedHolder]
	_, err := c.do(ctx, http.MethodGet, "/v1/reports/privileged", nil, nil, &out)
	return out.Items, err
}

// CollectBreakGlassShare calls POST /v1/breakglass/share: the caller's
// own share of the current break-glass credential, given once. It needs a
// proof (WithProof).
func (c *Client) CollectBreakGlassShare(ctx context.Context) (api.BreakGlassShare, error) {
	var out api.BreakGlassShare
	_, err := c.do(ctx, http.MethodPost, "/v1/breakglass/share", nil, nil, &out)
	return out, err
}
