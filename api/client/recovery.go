package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"

	"github.com/keyfleet/keyfleet/api"
)

// OpenRecovery calls POST /v1/recovery.
func (c *Client) OpenRecovery(ctx context.Context, in api.OpenRecovery) (api.RecoveryCase, error) {
	var out api.RecoveryCase
	_, err := c.do(ctx, http.MethodPost, "/v1/recovery", nil, in, &out)
	return out, err
}

// ListRecovery calls GET /v1/recovery.
func (c *Client) ListRecovery(ctx context.Context, user, state, cursor string, limit int) (api.Page[api.RecoveryCase], error) {
	q := url.Values{}
	for k, v := range map[string]string{"user": user, "state": state, "cursor": cursor} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var out api.Page[api.RecoveryCase]
	_, err := c.do(ctx, http.MethodGet, "/v1/recovery", q, nil, &out)
	return out, err
}

// GetRecovery calls GET /v1/recovery/{id}.
func (c *Client) GetRecovery(ctx context.Context, id string) (api.RecoveryCase, error) {
	var out api.RecoveryCase
	err := c.recoveryCall(ctx, http.MethodGet, id, "", nil, &out)
	return out, err
}

// BeginRecoveryVerify calls POST /v1/recovery/{id}/verify/begin.
func (c *Client) BeginRecoveryVerify(ctx context.Context, id string) (api.Verification, error) {
	var out api.Verification
	err := c.recoveryCall(ctx, http.MethodPost, id, "/verify/begin", nil, &out)
	return out, err
}

// FinishRecoveryVerify calls POST /v1/recovery/{id}/verify/finish.
func (c *Client) FinishRecoveryVerify(ctx context.Context, id string, in api.RecoveryFactorAnswer) (api.RecoveryCase, error) {
	var out api.RecoveryCase
	err := c.recoveryCall(ctx, http.MethodPost, id, "/verify/finish", in, &out)
	return out, err
}

// RecoveryCode calls POST /v1/recovery/{id}/code.
func (c *Client) RecoveryCode(ctx context.Context, id, code string) (api.RecoveryCase, error) {
	var out api.RecoveryCase
	err := c.recoveryCall(ctx, http.MethodPost, id, "/code", api.RecoveryCodeAnswer{Code: code}, &out)
	return out, err
}

// IdentityCheck calls POST /v1/recovery/{id}/identity-check; a second
// principal must approve the returned request.
func (c *Client) IdentityCheck(ctx context.Context, id string, in api.IdentityCheck) (api.Accepted, error) {
	var out api.Accepted
	err := c.recoveryCall(ctx, http.MethodPost, id, "/identity-check", in, &out)
	return out, err
}

// PassResult is the answer to issuing a pass: the pass (its code shown
// this once), or for a staff account Accepted, the request a second
// officer approves; the approver then receives the pass
// (api.Approval.IssuedPass) and the IssuedPass here is zero.
type PassResult struct {
	api.IssuedPass
	Accepted *api.Accepted
}

// IssuePass calls POST /v1/recovery/{id}/pass. For a staff account it
// needs a proof (WithProof) and answers with the request.
func (c *Client) IssuePass(ctx context.Context, id string, in api.IssuePass) (PassResult, error) {
	return c.pass(ctx, p("/v1/recovery/%s/pass", id), in)
}

// IssueOnboardingPass calls POST /v1/users/{user}/pass: a temporary access
// pass for a user with no active factor yet. For a staff account it needs
// a proof (WithProof) and answers with the request.
func (c *Client) IssueOnboardingPass(ctx context.Context, user string, in api.IssuePass) (PassResult, error) {
	return c.pass(ctx, p("/v1/users/%s/pass", user), in)
}

func (c *Client) pass(ctx context.Context, path string, in api.IssuePass) (PassResult, error) {
	var out PassResult
	acc, err := c.orAccepted(ctx, http.MethodPost, path, in, &out.IssuedPass)
	out.Accepted = acc
	return out, err
}

// CancelRecovery calls POST /v1/recovery/{id}/cancel.
func (c *Client) CancelRecovery(ctx context.Context, id, reason string) (api.RecoveryCase, error) {
	var out api.RecoveryCase
	err := c.recoveryCall(ctx, http.MethodPost, id, "/cancel", api.StateChange{Reason: reason}, &out)
	return out, err
}

func (c *Client) recoveryCall(ctx context.Context, method, id, suffix string, in, out any) error {
	_, err := c.do(ctx, method, p("/v1/recovery/%s", id)+suffix, nil, in, out)
	return err
}

// RecoveryUnlock calls POST /v1/users/{user}/recovery-unlock.
func (c *Client) RecoveryUnlock(ctx context.Context, user, reason string) (api.User, error) {
	var out api.User
	_, err := c.do(ctx, http.MethodPost, p("/v1/users/%s/recovery-unlock", user), nil, api.StateChange{Reason: reason}, &out)
	return out, err
}

// RegenerateRecoveryCodes calls POST /v1/me/recovery-codes. It needs a
// proof (WithProof), except with a pass's token.
func (c *Client) RegenerateRecoveryCodes(ctx context.Context) ([]string, error) {
	var out api.RecoveryCodesIssued
	_, err := c.do(ctx, http.MethodPost, "/v1/me/recovery-codes", nil, nil, &out)
	return out.Codes, err
}

// BreakGlassStatus calls GET /v1/breakglass.
func (c *Client) BreakGlassStatus(ctx context.Context) (api.BreakGlassStatus, error) {
	var out api.BreakGlassStatus
	_, err := c.do(ctx, http.MethodGet, "/v1/breakglass", nil, nil, &out)
	return out, err
}

// RotateBreakGlass calls POST /v1/breakglass/rotate: a request a second
// administrator approves; each holder then collects their own share
// (CollectBreakGlassShare). It needs a proof (WithProof).
func (c *Client) RotateBreakGlass(ctx context.Context, in api.BreakGlassRotate) (api.Accepted, error) {
	var out api.Accepted
	_, err := c.do(ctx, http.MethodPost, "/v1/breakglass/rotate", nil, in, &out)
	return out, err
}

// UseBreakGlass calls POST /v1/breakglass/session (no token needed).
func (c *Client) UseBreakGlass(ctx context.Context, in api.BreakGlassUse) (api.BreakGlassSession, error) {
	var out api.BreakGlassSession
	_, err := c.do(ctx, http.MethodPost, "/v1/breakglass/session", nil, in, &out)
	return out, err
}

// EndBreakGlass calls DELETE /v1/breakglass/session.
func (c *Client) EndBreakGlass(ctx context.Context) error {
	_, err := c.do(ctx, http.MethodDelete, "/v1/breakglass/session", nil, nil, nil)
	return err
}
