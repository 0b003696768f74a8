package core

import (
	"context"
	"slices"
	"strings"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/audit"
)

// PrivilegedReport lists every account holding a role beyond "user" (and
// every service account): one row per role, with who asked for it, who
// approved it, when the account was last used and how many of its tokens
// never expire. It is what keyfleet report privileged prints and what an
// auditor reviews. Errors: *ForbiddenError.
func (s *Service) PrivilegedReport(ctx context.Context, p Principal) ([]api.PrivilegedHolder, error) {
	if err := p.authorize(ReadReports, ""); err != nil {
		return nil, err
	}
	var out []api.PrivilegedHolder
	err := s.store.View(ctx, func(tx ReadTx) error {
		for _, role := range api.AllRoles {
			if role == api.RoleUser {
				continue
			}
			err := forEach(tx.Users, UserFilter{Role: role}, func(u User) error {
				row, err := holderRow(tx, u, role)
				if err != nil {
					return err
				}
				out = append(out, row)
				return nil
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	return out, err
}

// holderRow is one account's row for one role.
func holderRow(tx ReadTx, u User, role string) (api.PrivilegedHolder, error) {
	row := api.PrivilegedHolder{UserID: u.ID, Username: u.Username, Kind: u.Kind, Status: u.Status, Role: role}
	if g, ok := u.Grants[role]; ok {
		row.GrantedBy, row.ApprovedBy, row.GrantedAt = ptr(g.By), g.ApprovedBy, ptr(g.At)
	}
	err := forEach(tx.Tokens, TokenFilter{UserID: u.ID}, func(t Token) error {
		if t.RevokedAt != nil {
			return nil
		}
		if t.LastUsedAt != nil && (row.LastUsedAt == nil || t.LastUsedAt.After(*row.LastUsedAt)) {
			row.LastUsedAt = t.LastUsedAt
		}
		if t.Purpose == "" {
			row.Tokens++
			if t.ExpiresAt == nil {
				row.NoExpiry++
			}
		}
		return nil
	})
	return row, err
}

// EverlastingServiceTokens counts the live service-account tokens that
// never expire, for the compliance report and the overview.
func (s *Service) EverlastingServiceTokens(ctx context.Context, p Principal) (int, error) {
	rows, err := s.PrivilegedReport(ctx, p)
	n := 0
	for _, r := range rows {
		if r.Kind == api.KindService {
			n += r.NoExpiry
		}
	}
	return n, err
}

// PrivilegeEvents returns the newest audit events (at most n, newest
// first) that change or use privilege: approvals and refused attempts,
// role grants and removals, service accounts' tokens, the founding admins
// and break-glass. The overview lists them; it reads at most the last
// privilegeScan events. Errors: *ForbiddenError.
func (s *Service) PrivilegeEvents(ctx context.Context, p Principal, n int) ([]api.AuditEvent, error) {
	if err := p.authorize(ReadAudit, ""); err != nil {
		return nil, err
	}
	head := s.store.AuditHead().Seq
	after := uint64(0)
	if head > privilegeScan {
		after = head - privilegeScan
	}
	var out []api.AuditEvent
	err := s.store.AuditScan(ctx, after, func(_ uint64, r audit.Record) (bool, error) {
		ae, err := r.API()
		if err != nil {
			return false, err
		}
		if privilegeEvent(ae) {
			out = append(out, ae)
		}
		return true, nil
	})
	slices.Reverse(out)
	if len(out) > n {
		out = out[:n]
	}
	return out, err
}

// privilegeScan bounds how far back PrivilegeEvents reads.
const privilegeScan = 5000

func privilegeEvent(ae api.AuditEvent) bool {
	return ae.Extra["privilege"] == "true" || ae.Extra["bootstrap"] == "true" || ae.Extra["breakglass"] == "true" ||
		strings.HasPrefix(ae.Action, "breakglass.") || ae.Action == "approval.approve" || strings.HasSuffix(ae.Action, ".refused")
}
