package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"

	"github.com/keyfleet/keyfleet/api"
)

// GetPolicy calls GET /v1/policy: the current version and its document.
func (c *Client) GetPolicy(ctx context.Context) (api.CurrentPolicy, error) {
	var out api.CurrentPolicy
	_, err := c.do(ctx, http.MethodGet, "/v1/policy", nil, nil, &out)
	return out, err
}

// DryRunPolicy calls POST /v1/policy/dry-run: what applying doc would do.
func (c *Client) DryRunPolicy(ctx context.Context, doc string) (api.PolicyDryRun, error) {
	var out api.PolicyDryRun
	_, err := c.do(ctx, http.MethodPost, "/v1/policy/dry-run", nil, api.PolicyDocument{Document: doc}, &out)
	return out, err
}

// PolicyResult is the answer to an apply or a rollback: Applied when the
// change took effect at once, Accepted when it weakens the policy and
// waits for a second approver.
type PolicyResult struct {
	Applied  *api.PolicyApplied
	Accepted *api.Accepted
}

// ApplyPolicy calls POST /v1/policy.
func (c *Client) ApplyPolicy(ctx context.Context, in api.PolicyDocument) (PolicyResult, error) {
	return c.policyChange(ctx, "/v1/policy", in)
}

// RollbackPolicy calls POST /v1/policy/rollback.
func (c *Client) RollbackPolicy(ctx context.Context, in api.PolicyRollback) (PolicyResult, error) {
	return c.policyChange(ctx, "/v1/policy/rollback", in)
}

func (c *Client) policyChange(ctx context.Context, path string, in any) (PolicyResult, error) {
	var raw json.RawMessage
	code, err := c.do(ctx, http.MethodPost, path, nil, in, &raw)
	if err != nil {
		return PolicyResult{}, err
	}
	var out PolicyResult
	switch code {
	case http.StatusAccepted:
		out.Accepted = &api.Accepted{}
		err = json.Unmarshal(raw, out.Accepted)
	case http.StatusCreated:
		out.Applied = &api.PolicyApplied{}
		err = json.Unmarshal(raw, out.Applied)
	default:
		err = fmt.Errorf("POST %s: keyfleetd answered %d, neither applied nor accepted", path, code)
	}
	return out, err
}

// ListPolicyVersions calls GET /v1/policy/versions and returns one page,
// oldest first, without documents.
func (c *Client) ListPolicyVersions(ctx context.Context, cursor string, n int) (api.Page[api.PolicyVersion], error) {
	var pg api.Page[api.PolicyVersion]
	_, err := c.do(ctx, http.MethodGet, "/v1/policy/versions", query("cursor", cursor, "limit", limit(n)), nil, &pg)
	return pg, err
}

// GetPolicyVersion calls GET /v1/policy/versions/{n}.
func (c *Client) GetPolicyVersion(ctx context.Context, n int) (api.PolicyVersion, error) {
	var v api.PolicyVersion
	_, err := c.do(ctx, http.MethodGet, "/v1/policy/versions/"+strconv.Itoa(n), nil, nil, &v)
	return v, err
}

// DiffPolicy calls GET /v1/policy/diff. from < 0 means the version before
// to; to 0 means the current one.
func (c *Client) DiffPolicy(ctx context.Context, from, to int) (api.PolicyDiff, error) {
	q := query()
	if from >= 0 {
		q.Set("from", strconv.Itoa(from))
	}
	if to > 0 {
		q.Set("to", strconv.Itoa(to))
	}
	var d api.PolicyDiff
	_, err := c.do(ctx, http.MethodGet, "/v1/policy/diff", q, nil, &d)
	return d, err
}

// ExemptUser calls POST /v1/users/{user}/exemptions, which only opens an
// approval request.
func (c *Client) ExemptUser(ctx context.Context, user string, in api.CreateExemption) (api.Accepted, error) {
	return c.accepted(ctx, http.MethodPost, p("/v1/users/%s/exemptions", user), in)
}

// ComplianceReport calls GET /v1/reports/compliance; group "" means
// everyone, nearDays < 0 the daemon's default window.
func (c *Client) ComplianceReport(ctx context.Context, group string, nearDays int) (api.ComplianceReport, error) {
	q := query("group", group)
	if nearDays >= 0 {
		q.Set("near_days", strconv.Itoa(nearDays))
	}
	var r api.ComplianceReport
	_, err := c.do(ctx, http.MethodGet, "/v1/reports/compliance", q, nil, &r)
	return r, err
}

// FactorReport calls GET /v1/reports/factors: which is "stale" or
// "vulnerable"; group "" means everyone.
func (c *Client) FactorReport(ctx context.Context, which, group string) ([]api.ReportFactor, error) {
	q := query("group", group)
	q.Set("which", which)
	var out api.Page[api.ReportFactor]
	_, err := c.do(ctx, http.MethodGet, "/v1/reports/factors", q, nil, &out)
	return out.Items, err
}
