// Package fido2 is the daemon's built-in "fido2" factor kind: a WebAuthn
// credential on a FIDO2 security key, registered with its attestation
// (package attest) and verified by assertions (WebAuthn §7.1 and §7.2).
//
// It implements [sdk.Factor] like any plugin. It does no I/O and never
// logs. The same kind serves the workstation agent, which drives a USB key
// through libfido2 and builds the WebAuthn JSON itself, and the daemon's
// sign-in page, whose browser calls navigator.credentials.create/get: the
// wire shapes (package api, FIDO2*) are the browser's own JSON.
//
// Trust is explicit: Yubico's FIDO roots are built in (package attest) and
// Config.Roots adds others (a software authenticator's test CA), never by
// default. Without Config.RequireAttestation a key with self or no
// attestation enrols too, without a device record.
//
// Enrolment: BeginEnrol returns the creation options (challenge = the
// enrolment challenge, user handle = the user id) in Params; FinishEnrol
// verifies the registration and keeps the credential id, the COSE public
// key, the sign count and the AAGUID as the factor's state.
//
// Verification: BeginVerify returns the request options for this one
// credential; FinishVerify checks the assertion and the sign counter. A
// counter that does not increase (when the key keeps one) is a possible
// clone: OK false, Suspicious true.
package fido2
