package httpapi

import (
	"net/http"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/core"
)

// registerProofs adds fresh proofs of possession (POST /v1/proofs), the
// command-line sign-in that turns one into a person's token (POST
// /v1/login/begin and /v1/login, tokenless), and the report of who holds
// privilege. The sign-in routes are not in the attempt limiter: they give
// every name the same answer, a key's signature cannot be guessed, and a
// wrong answer counts towards the user's lockout as any verification does;
// a per-address limit would only lock out an office behind one address.
func (h *Handler) registerProofs() {
	h.route("POST /v1/proofs", core.ReadSelf, h.beginProof)
	h.public("POST /v1/login/begin", h.beginLogin)
	h.public("POST /v1/login", h.login)
	h.route("GET /v1/reports/privileged", core.ReadReports, h.privilegedReport)
}

func (h *Handler) beginProof(r *http.Request, p core.Principal) (int, any, error) {
	var in api.ProofRequest
	if err := decode(r, &in, false); err != nil {
		return 0, nil, err
	}
	ch, err := h.svc.BeginProof(r.Context(), p, in)
	return http.StatusCreated, ch, err
}

func (h *Handler) beginLogin(r *http.Request) (int, any, error) {
	var in api.LoginBegin
	if err := decode(r, &in, false); err != nil {
		return 0, nil, err
	}
	ch, err := h.svc.BeginLogin(r.Context(), in)
	return http.StatusCreated, ch, err
}

func (h *Handler) login(r *http.Request) (int, any, error) {
	var in api.Login
	if err := decode(r, &in, false); err != nil {
		return 0, nil, err
	}
	var p core.Principal
	if err := withProof(r, &p); err != nil {
		return 0, nil, err
	}
	t, secret, err := h.svc.Login(r.Context(), in, p.Proof)
	return http.StatusCreated, api.CreatedToken{Token: t.API(), Secret: secret}, err
}

func (h *Handler) privilegedReport(r *http.Request, p core.Principal) (int, any, error) {
	rows, err := h.svc.PrivilegedReport(r.Context(), p)
	if rows == nil {
		rows = []api.PrivilegedHolder{}
	}
	return http.StatusOK, api.Page[api.PrivilegedHolder]{Items: rows}, err
}
