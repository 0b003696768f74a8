// Package web serves keyfleet's dashboard and self-service pages:
// html/template pages and static files embedded in the binary, with
// JavaScript only for the WebAuthn ceremonies, proofs and the policy
// editor's live check (static/webauthn.js).
//
// The dashboard takes security keys only (WebAuthn, through the "fido2"
// factor kind and core's BeginVerify/FinishVerify); there is no password.
// A person who holds no key may, when the policy allows it, sign in to
// their own self-service pages with their authenticator app's code and
// the second check the policy names (core.AppSignIn); such a session never
// reaches the dashboard. A new user registers their first key or app with
// an enrolment code (see [EnrolmentCode]) or a temporary access pass.
// Sessions live in a [SessionStore] under the hash of their cookie;
// cookies are HttpOnly, SameSite=Strict and, with Config.Secure, Secure
// with the __Host- prefix. Every POST checks the Origin and a per-session
// CSRF token; the actions core binds to a fresh proof carry one made for
// that action (proof.go), and the other sensitive ones need a
// re-verification with the key within Config.StepUpFor. Every action goes
// through daemon/core as the signed-in user (core.Principal with Auth
// "webauthn", or "web_app" for an app session), so the one permission
// table in core decides. See docs/web.md.
package web
