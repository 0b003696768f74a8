package client

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"github.com/keyfleet/keyfleet/api"
)

// ListApprovals calls GET /v1/approvals and returns one page.
func (c *Client) ListApprovals(ctx context.Context, f ApprovalFilter) (api.Page[api.Approval], error) {
	var pg api.Page[api.Approval]
	_, err := c.do(ctx, http.MethodGet, "/v1/approvals", f.values(), nil, &pg)
	return pg, err
}

// GetApproval calls GET /v1/approvals/{id}.
func (c *Client) GetApproval(ctx context.Context, id string) (api.Approval, error) {
	var a api.Approval
	_, err := c.do(ctx, http.MethodGet, p("/v1/approvals/%s", id), nil, nil, &a)
	return a, err
}

// Approve calls POST /v1/approvals/{id}/approve. The daemon executes the
// action before answering; if it failed, the approval's State is
// api.ApprovalFailed and Error says why.
func (c *Client) Approve(ctx context.Context, id, comment string) (api.Approval, error) {
	return c.decide(ctx, id, "approve", comment)
}

// Deny calls POST /v1/approvals/{id}/deny.
func (c *Client) Deny(ctx context.Context, id, comment string) (api.Approval, error) {
	return c.decide(ctx, id, "deny", comment)
}

// CancelApproval calls POST /v1/approvals/{id}/cancel; only the requester
// may.
func (c *Client) CancelApproval(ctx context.Context, id, comment string) (api.Approval, error) {
	return c.decide(ctx, id, "cancel", comment)
}

func (c *Client) decide(ctx context.Context, id, verb, comment string) (api.Approval, error) {
	var a api.Approval
	_, err := c.do(ctx, http.MethodPost, p("/v1/approvals/%s/", id)+verb, nil, api.StateChange{Reason: comment}, &a)
	return a, err
}

// ListAudit calls GET /v1/audit and returns one page of events in
// sequence order.
func (c *Client) ListAudit(ctx context.Context, f AuditFilter) (api.Page[api.AuditEvent], error) {
	var pg api.Page[api.AuditEvent]
	_, err := c.do(ctx, http.MethodGet, "/v1/audit", f.values(), nil, &pg)
	return pg, err
}

// NextAfter returns the AuditFilter.After that fetches the page following
// pg, and false when pg was the last one.
func NextAfter(pg api.Page[api.AuditEvent]) (uint64, bool) {
	if len(pg.Items) == 0 {
		return 0, false
	}
	if pg.NextCursor == "" {
		return pg.Items[len(pg.Items)-1].Seq, false
	}
	n, err := strconv.ParseUint(pg.NextCursor, 10, 64)
	if err != nil {
		return pg.Items[len(pg.Items)-1].Seq, true
	}
	return n, true
}

// VerifyAudit calls GET /v1/audit/verify: the daemon checks the hash chain
// from the newest signed checkpoint, or with full every record from the
// first. A broken chain is not an error: check the answer's OK.
func (c *Client) VerifyAudit(ctx context.Context, full bool) (api.AuditVerification, error) {
	var v api.AuditVerification
	var q url.Values
	if full {
		q = url.Values{"full": {"true"}}
	}
	_, err := c.do(ctx, http.MethodGet, "/v1/audit/verify", q, nil, &v)
	return v, err
}

// AuditHead calls GET /v1/audit/head: the last event's sequence number and
// chain hash.
func (c *Client) AuditHead(ctx context.Context) (api.AuditHead, error) {
	var h api.AuditHead
	_, err := c.do(ctx, http.MethodGet, "/v1/audit/head", nil, nil, &h)
	return h, err
}

// ExportAudit calls GET /v1/audit/export and copies the NDJSON stream of
// events after sequence number after (0 for all) to w.
func (c *Client) ExportAudit(ctx context.Context, after uint64, w io.Writer) error {
	q := query("after", "")
	if after > 0 {
		q.Set("after", strconv.FormatUint(after, 10))
	}
	resp, err := c.send(ctx, http.MethodGet, "/v1/audit/export", q, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(w, resp.Body); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("copying audit export: %w", err)
	}
	return nil
}
