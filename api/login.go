package api

import "time"

// FirstLoginPass is the answer to POST /v1/users/{user}/first-login-pass:
// a temporary access pass for the first enrolment of a user who tried to
// sign in with no factor while the policy says they must enrol, and where
// to redeem it. A login surface (the PAM module) shows both to the user.
type FirstLoginPass struct {
	IssuedPass
	// WelcomeURL is the page that takes the pass (keyfleet's /welcome).
	WelcomeURL string `json:"welcome_url,omitempty"`
}

// Outcomes of a LoginDecision.
const (
	LoginAllowed = "allowed" // let in without a verification (audited login.allowed)
	LoginRefused = "refused" // refused before any verification (audited login.refused)
)

// LoginDecision is the body of POST /v1/login-decisions: a sign-in that a
// login surface outside keyfleetd (the PAM module) decided without a
// verification — let in within an enrolment deadline or as a member of a
// fallback group, refused past the deadline or for an unknown user — for
// keyfleetd's audit trail. A verification audits itself. The answer (201)
// is the decision as recorded.
type LoginDecision struct {
	// User is the name the person typed; it may name nobody keyfleet knows.
	User string `json:"user"`
	// Outcome is LoginAllowed or LoginRefused.
	Outcome string `json:"outcome"`
	// Reason is a short code: 1 to 48 of a-z, 0-9 and _ (grace,
	// not_required, must_enrol, fallback_group, unknown_user…).
	Reason string `json:"reason"`
	// Service is the login's service (PAM_SERVICE: sshd, login, sudo),
	// Host the machine the sign-in is on, RemoteHost where it comes from
	// (PAM_RHOST): at most 64, 255 and 255 printable characters.
	Service    string `json:"service,omitempty"`
	Host       string `json:"host,omitempty"`
	RemoteHost string `json:"remote_host,omitempty"`
	// OccurredAt is when the decision was made, for a record sent late
	// (kept while keyfleetd could not be reached): at most 30 days ago and
	// not in the future. Absent means now.
	OccurredAt *time.Time `json:"occurred_at,omitempty"`
	// ID names the record (1 to 64 of A-Z, a-z, 0-9, _ and -) so that one
	// sent twice — a retry whose first answer was lost — can be told.
	ID string `json:"id,omitempty"`
}
