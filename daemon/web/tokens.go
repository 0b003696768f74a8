package web

import (
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/core"
)

// Tokens: a person's own API tokens (made with a fresh proof of their own
// key, as keyfleet login does; core refuses anything else), and, for
// administrators, the tokens of service accounts, which hold only the
// service role. A new token's secret is shown once, in the answer to the
// request that made it.

type tokenRow struct {
	core.Token
	Owner string // the service account's username
	Live  bool
}

type tokensPage struct {
	Own      []tokenRow
	Services []tokenRow
	Accounts []core.User // service accounts, for the create form
	// Created is a token just made: its secret, shown this once.
	Created *createdToken
	// Admin may see and make service accounts' tokens.
	Admin bool
	TTLs  [][2]string
}

type createdToken struct {
	Name, Owner, Secret string
}

var ownTTLs = [][2]string{{"1h", "1 hour"}, {"12h", "12 hours"}, {"24h", "1 day"}, {"168h", "7 days"}}
var serviceTTLs = [][2]string{{"720h", "30 days"}, {"2160h", "90 days"}, {"8760h", "1 year"}, {"", "never (flagged on the overview)"}}

func (h *handler) tokensPage(rq *request) error {
	d, err := h.loadTokens(rq)
	if err != nil {
		return err
	}
	h.render(rq, http.StatusOK, "tokens", "Tokens", d)
	return nil
}

func (h *handler) loadTokens(rq *request) (tokensPage, error) {
	now := h.now()
	d := tokensPage{Admin: rq.p.Allowed(core.CreateTokens) && rq.p.Scope(core.ReadTokens) == core.All, TTLs: ownTTLs}
	own, _, err := h.svc.ListTokens(rq.ctx, rq.self(), rq.user.ID, core.PageReq{Limit: core.MaxPageSize})
	if err != nil {
		return d, err
	}
	d.Own = tokenRows(own, "", now)
	if !d.Admin {
		return d, nil
	}
	for _, role := range []string{api.RoleService, api.RoleLoginHost, api.RoleScim} {
		us, _, err := h.svc.ListUsers(rq.ctx, rq.p, core.UserFilter{Role: role, Status: api.UserActive}, core.PageReq{Limit: 200})
		if err != nil {
			return d, err
		}
		for _, u := range us {
			if u.Kind == api.KindService && !slices.ContainsFunc(d.Accounts, func(a core.User) bool { return a.ID == u.ID }) {
				d.Accounts = append(d.Accounts, u)
			}
		}
	}
	for _, u := range d.Accounts {
		ts, _, err := h.svc.ListTokens(rq.ctx, rq.p, u.ID, core.PageReq{Limit: core.MaxPageSize})
		if err != nil {
			return d, err
		}
		d.Services = append(d.Services, tokenRows(ts, u.Username, now)...)
	}
	return d, nil
}

// tokenRows keeps API tokens (not a pass's or a break-glass session's),
// live ones first.
func tokenRows(ts []core.Token, owner string, now time.Time) []tokenRow {
	var out []tokenRow
	for _, t := range ts {
		if t.Purpose != "" {
			continue
		}
		live := t.RevokedAt == nil && (t.ExpiresAt == nil || t.ExpiresAt.After(now))
		out = append(out, tokenRow{Token: t, Owner: owner, Live: live})
	}
	slices.SortStableFunc(out, func(a, b tokenRow) int {
		if a.Live != b.Live {
			if a.Live {
				return -1
			}
			return 1
		}
		return b.CreatedAt.Compare(a.CreatedAt)
	})
	return out
}

// createToken makes a token: one's own (the form carries the proof of
// the person's key, bound to the name and lifetime), or, for an admin, a
// service account's. The secret is shown once.
func (h *handler) createToken(rq *request) error {
	in := api.CreateToken{Name: strings.TrimSpace(rq.r.PostFormValue("name")), TTL: rq.r.PostFormValue("ttl"), User: rq.r.PostFormValue("user")}
	p := rq.p
	if in.User == "" {
		p = rq.self()
	}
	t, secret, err := h.svc.CreateToken(rq.ctx, p, in)
	if err != nil {
		return err
	}
	d, err := h.loadTokens(rq)
	if err != nil {
		return err
	}
	owner := rq.user.Username
	if i := slices.IndexFunc(d.Accounts, func(u core.User) bool { return u.ID == t.UserID }); i >= 0 {
		owner = d.Accounts[i].Username
	}
	d.Created = &createdToken{Name: t.Name, Owner: owner, Secret: secret}
	h.log.Info("web token created", "token_id", t.ID, "request_id", rq.id)
	h.render(rq, http.StatusOK, "tokens", "Tokens", d)
	return nil
}

func (h *handler) revokeToken(rq *request) error {
	p := rq.p
	if rq.r.PostFormValue("own") != "" {
		p = rq.self()
	}
	t, err := h.svc.RevokeToken(rq.ctx, p, rq.r.PathValue("id"))
	if err != nil {
		return err
	}
	return rq.redirect("/tokens", "Token "+t.Name+" is revoked: it stopped working at once.")
}
