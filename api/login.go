package api

// FirstLoginPass is the answer to POST /v1/users/{user}/first-login-pass:
// a temporary access pass for the first enrolment of a user who tried to
// sign in with no factor while the policy says they must enrol, and where
// to redeem it. A login surface (the PAM module) shows both to the user.
type FirstLoginPass struct {
	IssuedPass
	// WelcomeURL is the page that takes the pass (keyfleet's /welcome).
	WelcomeURL string `json:"welcome_url,omitempty"`
}
