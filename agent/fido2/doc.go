// Package fido2 implements the agent's FIDO2 token interfaces
// (agent.FIDO2Token, agent.FIDO2Opener) twice:
//
//   - Soft, a pure-Go software authenticator for tests and demos: packed
//     attestation from a test CA (with the FIDO AAGUID extension and
//     Yubico-like firmware and, for enterprise attestation, serial
//     extensions), a PIN with retries, a global sign counter, resident and
//     non-resident credentials, touch simulation and an optional state
//     file. Its CA is trusted only where a daemon is configured to.
//   - Opener and Token, the go-libfido2 adapter for real USB keys (cgo; in
//     libfido2*.go only). Build with -tags nolibfido2 where libfido2-dev is
//     missing: the adapter then reports ErrNoLibfido2.
//
// Debian's libfido2 has no PC/SC transport and go-libfido2 opens devices
// by path only, so the software authenticator cannot sit behind the
// adapter: tests drive the agent's workflows through the interface.
package fido2
