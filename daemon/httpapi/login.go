package httpapi

import (
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

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

// registerLogin adds the routes of login surfaces outside keyfleetd (the
// PAM module): a user's first-login pass, and the record of a sign-in
// decided without a verification. Only a login host's token may call them
// (the login_host role); core decides whether the user may have a pass.
func (h *Handler) registerLogin(fl FirstLogin) {
	h.route("POST /v1/login-decisions", core.RecordLogins, h.recordLoginDecision)
	h.route("POST /v1/users/{user}/first-login-pass", core.IssueFirstLoginPasses, func(r *http.Request, p core.Principal) (int, any, error) {
		if fl.PassTTL == 0 {
			return 0, nil, &apiError{http.StatusForbidden, probForbidden, "First-login passes are off",
				"keyfleetd does not issue first-login passes (first_login.enabled is false in keyfleetd.yaml); the helpdesk issues access passes"}
		}
		pass, err := h.svc.IssueFirstLoginPass(r.Context(), p, r.PathValue("user"), fl.PassTTL)
		return http.StatusCreated, api.FirstLoginPass{IssuedPass: pass, WelcomeURL: fl.WelcomeURL}, err
	})
}

// recordLoginDecision audits a sign-in a login surface decided without a
// verification (core.RecordLogin: login.allowed or login.refused), with
// where it happened in the record's extra fields. Bad input records
// nothing.
func (h *Handler) recordLoginDecision(r *http.Request, p core.Principal) (int, any, error) {
	var in api.LoginDecision
	if err := decode(r, &in, false); err != nil {
		return 0, nil, err
	}
	ev, extra, err := loginDecision(in, h.svc.Now())
	if err != nil {
		return 0, nil, err
	}
	ri := core.RequestFrom(r.Context())
	ri.Extra = extra
	if err := h.svc.RecordLogin(core.WithRequest(r.Context(), ri), p, ev); err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, in, nil
}

// Bounds of a login decision's fields.
const (
	maxLoginUser   = 256
	loginLateLimit = 30 * 24 * time.Hour // how late a record may be sent
	loginClockSkew = 5 * time.Minute     // how far ahead of keyfleetd's clock a surface's may be
)

var loginRecordID = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// loginDecision checks a decision and makes it core's event and the
// record's extra fields (core checks the reason). Errors:
// *core.ValidationError naming the field.
func loginDecision(in api.LoginDecision, now time.Time) (core.LoginEvent, map[string]string, error) {
	outcome, ok := map[string]string{api.LoginAllowed: core.LoginAllowed, api.LoginRefused: core.LoginRefused}[in.Outcome]
	if !ok {
		return core.LoginEvent{}, nil, &core.ValidationError{Field: "outcome", Reason: fmt.Sprintf("%q is not %q or %q", in.Outcome, api.LoginAllowed, api.LoginRefused)}
	}
	if in.User == "" || len(in.User) > maxLoginUser || !printableText(in.User) {
		return core.LoginEvent{}, nil, &core.ValidationError{Field: "user", Reason: fmt.Sprintf("give the name the person typed: 1 to %d printable characters", maxLoginUser)}
	}
	extra := map[string]string{}
	for _, f := range []struct {
		field, key, value string
		max               int
	}{{"service", "login_service", in.Service, 64}, {"host", "login_host", in.Host, 255}, {"remote_host", "remote_host", in.RemoteHost, 255}} {
		if len(f.value) > f.max || !printableText(f.value) {
			return core.LoginEvent{}, nil, &core.ValidationError{Field: f.field, Reason: fmt.Sprintf("at most %d printable characters", f.max)}
		}
		if f.value != "" {
			extra[f.key] = f.value
		}
	}
	if in.ID != "" {
		if !loginRecordID.MatchString(in.ID) {
			return core.LoginEvent{}, nil, &core.ValidationError{Field: "id", Reason: "1 to 64 of A-Z, a-z, 0-9, _ and -"}
		}
		extra["record_id"] = in.ID
	}
	if t := in.OccurredAt; t != nil {
		if t.After(now.Add(loginClockSkew)) || t.Before(now.Add(-loginLateLimit)) {
			return core.LoginEvent{}, nil, &core.ValidationError{Field: "occurred_at", Reason: "must be within the last 30 days and not in the future; check the host's clock"}
		}
		extra["occurred_at"] = t.UTC().Format(time.RFC3339)
	}
	return core.LoginEvent{User: in.User, Outcome: outcome, Reason: in.Reason}, extra, nil
}

// printableText reports whether s is valid UTF-8 with no control
// characters (nothing a log or a terminal would act on).
func printableText(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsFunc(s, unicode.IsControl)
}
