// Package web serves keyfleet's dashboard and self-service pages:
// html/template pages and static files embedded in the binary, with
// JavaScript only for the WebAuthn ceremonies (static/webauthn.js).
//
// Everyone signs in with a security key or passkey (WebAuthn, through the
// "fido2" factor kind and core's BeginVerify/FinishVerify); there is no
// password. A new user registers their first key with an enrolment code
// (see [EnrolmentCode]) or a temporary access pass from a recovery case.
// Sessions live in a [SessionStore] under the hash of their cookie;
// cookies are HttpOnly, SameSite=Strict and, with Config.Secure, Secure
// with the __Host- prefix. Every POST checks the Origin and a per-session
// CSRF token; sensitive actions (approving, requesting a revoke, reset or
// exemption, marking a key lost, applying a policy, adding a factor, the
// recovery steps, new recovery codes) need a re-verification with the key
// within Config.StepUpFor. Every action goes through daemon/core as the
// signed-in user (core.Principal with Auth "webauthn"), so the one
// permission table in core decides. See docs/web.md.
package web
