package client

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/keyfleet/keyfleet/api"
)

// ListFactors calls GET /v1/factors and returns one page.
func (c *Client) ListFactors(ctx context.Context, f FactorFilter) (api.Page[api.Factor], error) {
	var pg api.Page[api.Factor]
	_, err := c.do(ctx, http.MethodGet, "/v1/factors", f.values(), nil, &pg)
	return pg, err
}

// GetFactor calls GET /v1/factors/{id}.
func (c *Client) GetFactor(ctx context.Context, id string) (api.Factor, error) {
	var f api.Factor
	_, err := c.do(ctx, http.MethodGet, p("/v1/factors/%s", id), nil, nil, &f)
	return f, err
}

// UpdateFactor calls PATCH /v1/factors/{id}.
func (c *Client) UpdateFactor(ctx context.Context, id string, in api.UpdateFactor) (api.Factor, error) {
	var f api.Factor
	_, err := c.do(ctx, http.MethodPatch, p("/v1/factors/%s", id), nil, in, &f)
	return f, err
}

// RenameFactor sets a factor's label through UpdateFactor.
func (c *Client) RenameFactor(ctx context.Context, id, label string) (api.Factor, error) {
	return c.UpdateFactor(ctx, id, api.UpdateFactor{Label: &label})
}

// SuspendFactor calls POST /v1/factors/{id}/suspend.
func (c *Client) SuspendFactor(ctx context.Context, id, reason string) (api.Factor, error) {
	return c.factorState(ctx, id, "suspend", reason)
}

// ResumeFactor calls POST /v1/factors/{id}/resume.
func (c *Client) ResumeFactor(ctx context.Context, id, reason string) (api.Factor, error) {
	return c.factorState(ctx, id, "resume", reason)
}

func (c *Client) factorState(ctx context.Context, id, verb, reason string) (api.Factor, error) {
	var f api.Factor
	_, err := c.do(ctx, http.MethodPost, p("/v1/factors/%s/", id)+verb, nil, api.StateChange{Reason: reason}, &f)
	return f, err
}

// RevokeFactor calls POST /v1/factors/{id}/revoke, which only opens an
// approval request.
func (c *Client) RevokeFactor(ctx context.Context, id, reason string) (api.Accepted, error) {
	return c.RevokeFactorWith(ctx, id, api.StateChange{Reason: reason})
}

// RevokeFactorWith is RevokeFactor with the whole body: in.ReplacementPlanned
// lets a user's last active factor go.
func (c *Client) RevokeFactorWith(ctx context.Context, id string, in api.StateChange) (api.Accepted, error) {
	return c.accepted(ctx, http.MethodPost, p("/v1/factors/%s/revoke", id), in)
}

// RemoveOwnFactor calls POST /v1/factors/{id}/remove: one's own factor is
// revoked at once (the revoked factor is returned) while the policy is
// still met without it; otherwise the answer is the approval request.
func (c *Client) RemoveOwnFactor(ctx context.Context, id, reason string) (*api.Factor, *api.Accepted, error) {
	var raw json.RawMessage
	code, err := c.do(ctx, http.MethodPost, p("/v1/factors/%s/remove", id), nil, api.StateChange{Reason: reason}, &raw)
	if err != nil {
		return nil, nil, err
	}
	if code == http.StatusAccepted {
		var a api.Accepted
		return nil, &a, json.Unmarshal(raw, &a)
	}
	var f api.Factor
	return &f, nil, json.Unmarshal(raw, &f)
}

// DeleteFactor calls DELETE /v1/factors/{id}, which only opens an approval
// request.
func (c *Client) DeleteFactor(ctx context.Context, id, reason string) (api.Accepted, error) {
	return c.DeleteFactorWith(ctx, id, api.StateChange{Reason: reason})
}

// DeleteFactorWith is DeleteFactor with the whole body: in.ReplacementPlanned
// lets a user's last active factor go.
func (c *Client) DeleteFactorWith(ctx context.Context, id string, in api.StateChange) (api.Accepted, error) {
	return c.accepted(ctx, http.MethodDelete, p("/v1/factors/%s", id), in)
}

// ListDevices calls GET /v1/devices and returns one page.
func (c *Client) ListDevices(ctx context.Context, f DeviceFilter) (api.Page[api.Device], error) {
	var pg api.Page[api.Device]
	_, err := c.do(ctx, http.MethodGet, "/v1/devices", f.values(), nil, &pg)
	return pg, err
}

// GetDevice calls GET /v1/devices/{id}.
func (c *Client) GetDevice(ctx context.Context, id string) (api.Device, error) {
	var d api.Device
	_, err := c.do(ctx, http.MethodGet, p("/v1/devices/%s", id), nil, nil, &d)
	return d, err
}

// ReportDeviceLost calls POST /v1/devices/{id}/lost: the device is marked
// lost and every factor on it revoked at once.
func (c *Client) ReportDeviceLost(ctx context.Context, id, reason string) (api.Device, error) {
	var d api.Device
	_, err := c.do(ctx, http.MethodPost, p("/v1/devices/%s/lost", id), nil, api.StateChange{Reason: reason}, &d)
	return d, err
}

// BeginActivation calls POST /v1/factors/{id}/activate/begin: the
// challenge a pending factor's key must answer.
func (c *Client) BeginActivation(ctx context.Context, factorID string) (api.VerificationFactor, error) {
	var out api.VerificationFactor
	_, err := c.do(ctx, http.MethodPost, p("/v1/factors/%s/activate/begin", factorID), nil, nil, &out)
	return out, err
}

// ActivateFactor calls POST /v1/factors/{id}/activate with the key's
// answer; the factor becomes active.
func (c *Client) ActivateFactor(ctx context.Context, factorID string, response json.RawMessage) (api.Factor, error) {
	var out api.Factor
	body := struct {
		Response json.RawMessage `json:"response"`
	}{response}
	_, err := c.do(ctx, http.MethodPost, p("/v1/factors/%s/activate", factorID), nil, body, &out)
	return out, err
}
