package web

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/core"
)

// Temporary access passes ("kfp-xxxxx-xxxxx-xxxxx-xxxxx") come from a
// confirmed recovery case (see docs/recovery.md). At /welcome the pages
// redeem one with core.RedeemPass, turn the token it answers into the pass
// principal at once (core.Authenticate) and keep only that principal in
// the session: the pass may then enrol a security key for its user, as
// core allows a pass (hardware-only passes included; attended passes only
// when an enroller who is signed in redeems them at the desk).

var errBadPass = &pageError{Status: http.StatusBadRequest,
	Msg: "That access pass is not valid, was already used or has expired. Ask the helpdesk for a new one."}

func passCodeHash(code string) [32]byte {
	return sha256.Sum256([]byte(strings.ToLower(strings.TrimSpace(code))))
}

// principal is the pass as core knows it: enrol a factor for its user,
// nothing else.
func (g *PassGrant) principal() core.Principal {
	return core.Principal{UserID: g.UserID, Username: g.Username, Roles: g.Roles, Auth: "pass", TokenID: g.TokenID, PassID: g.PassID}
}

// passGrant redeems a pass for enrolling a factor of kind, or resumes one
// this browser redeemed before with the same code.
func (h *handler) passGrant(rq *request, code, kind string) (*PassGrant, error) {
	sum := passCodeHash(code)
	if g := rq.sess.Pass; g != nil && h.now().Before(g.Expires) && subtle.ConstantTimeCompare(g.CodeHash[:], sum[:]) == 1 {
		if !slices.Contains(g.Kinds, kind) {
			return nil, &pageError{Status: http.StatusBadRequest, Msg: "This access pass does not allow " + kindWords(h.cfg, kind) + " here (it allows " +
				strings.Join(g.Kinds, ", ") + "). Use the other choice on this page."}
		}
		return g, nil
	}
	desk := h.deskEnroller(rq)
	out, err := h.svc.RedeemPass(rq.ctx, desk, code)
	if err != nil {
		switch {
		case errors.Is(err, core.ErrForbidden):
			return nil, &pageError{Status: http.StatusForbidden, Msg: "This access pass is for an attended enrolment: " +
				"an enroller signs in at the IT desk and enters it there, with you and your new key present."}
		case errors.Is(err, core.ErrUnavailable):
			return nil, err
		}
		return nil, errBadPass
	}
	if !slices.Contains(out.Kinds, kind) {
		return nil, &pageError{Status: http.StatusBadRequest, Msg: "This access pass does not allow " + kindWords(h.cfg, kind) + " here " +
			"(it allows " + strings.Join(out.Kinds, ", ") + "). Use the other choice on this page, enrol with the keyfleet agent, or ask the helpdesk for another pass."}
	}
	p, err := h.svc.Authenticate(rq.ctx, out.Token)
	if err != nil {
		return nil, err
	}
	g := &PassGrant{UserID: p.UserID, Username: out.Username, TokenID: p.TokenID, PassID: p.PassID, Roles: p.Roles,
		CodeHash: sum, Desk: desk.UserID != "", Expires: out.ExpiresAt, Kinds: out.Kinds}
	rq.sess.Pass = g
	h.log.Info("web access pass redeemed", "user", out.Username, "pass_id", p.PassID, "desk", g.Desk, "request_id", rq.id)
	return g, nil
}

// deskEnroller is the signed-in visitor when they may complete anyone's
// enrolment (an enroller or admin at the desk), who may then redeem an
// attended pass; otherwise the zero principal.
func (h *handler) deskEnroller(rq *request) core.Principal {
	if !rq.sess.SignedIn() {
		return core.Principal{}
	}
	if err := h.loadUser(rq); err != nil {
		h.issue(rq) // the session ended: go on anonymously, in a new one
		return core.Principal{}
	}
	if rq.p.Scope(core.CompleteEnrol) != core.All {
		return core.Principal{}
	}
	return rq.p
}

// issuePassForm reads the pass options from a form.
func issuePassForm(rq *request) api.IssuePass {
	in := api.IssuePass{TTL: rq.r.PostFormValue("ttl"), HardwareOnly: rq.r.PostFormValue("hardware_only") != "",
		Attended: rq.r.PostFormValue("attended") != ""}
	switch rq.r.PostFormValue("uses") {
	case "2":
		in.Uses = 2
	case "3":
		in.Uses = 3
	default:
		in.Uses = 1
	}
	return in
}

// kindWords names what enrolling a factor of kind means, for messages.
func kindWords(cfg Config, kind string) string {
	if kind == cfg.TOTPKind {
		return "adding an authenticator app"
	}
	return "registering a security key"
}
