package httpapi

import (
	"net/http"
	"time"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/core"
)

// FirstLogin configures first-login passes for login surfaces that reach
// keyfleetd through the API (the PAM module; keyfleetd.yaml first_login).
// The zero value turns them off.
type FirstLogin struct {
	// PassTTL is how long a first-login pass lasts; 0 turns them off.
	PassTTL time.Duration
	// WelcomeURL is where a pass is redeemed, returned with it.
	WelcomeURL string
}

// registerLogin adds the route a login surface asks for a user's
// first-login pass on. A service token may call it (verify.use); core
// decides whether the user may have one.
func (h *Handler) registerLogin(fl FirstLogin) {
	h.route("POST /v1/users/{user}/first-login-pass", core.VerifyUsers, func(r *http.Request, p core.Principal) (int, any, error) {
		if fl.PassTTL == 0 {
			return 0, nil, &apiError{http.StatusForbidden, probForbidden, "First-login passes are off",
				"keyfleetd does not issue first-login passes (first_login.enabled is false in keyfleetd.yaml); the helpdesk issues access passes"}
		}
		pass, err := h.svc.IssueFirstLoginPass(r.Context(), p, r.PathValue("user"), fl.PassTTL)
		return http.StatusCreated, api.FirstLoginPass{IssuedPass: pass, WelcomeURL: fl.WelcomeURL}, err
	})
}
