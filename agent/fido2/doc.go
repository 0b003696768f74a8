// Package fido2 implements the agent's FIDO2 token interfaces
// (agent.FIDO2Token, agent.FIDO2Opener) three ways:
//
//   - Soft, a pure-Go software authenticator for tests and demos: packed
//     attestation from a test CA (with the FIDO AAGUID extension and
//     Yubico-like firmware and, for enterprise attestation, serial
//     extensions), a PIN with retries, a global sign counter, resident and
//     non-resident credentials, touch simulation and an optional state
//     file. Its CA is trusted only where a daemon is configured to.
//
//   - Opener and Token, the go-libfido2 adapter for real USB keys (cgo; in
//     libfido2*.go only). Build with -tags nolibfido2 where libfido2-dev is
//     missing: the adapter then reports ErrNoLibfido2.
//
//   - CTAPToken, CTAP2's platform side over any transport, and
//     PCSCOpener, which carries it in NFCCTAP_MSG APDUs through PC/SC
//     (libpcsclite, cgo in pcsc_cgo.go): the FIDO applet of a key over
//     NFC or CCID, and of the virtual key (agent/vkey). HIDThenPCSC
//     prefers USB HID and falls back to PC/SC.
//
// Soft.CTAP is the authenticator's side of CTAP 2.1 as a YubiKey 5.7 answers
// it (getInfo, makeCredential, getAssertion and getNextAssertion, clientPIN
// with PIN/UV auth protocols one and two and tokens with permissions,
// reset within 5 s of plugging in, credentialManagement and its 0x41
// preview, selection; the hmac-secret and credProtect extensions; three
// wrong PINs in a row block until the key is plugged in again); the
// virtual key's FIDO applet calls it, so the software authenticator is
// reachable through the real pcscd by the agent and by python-fido2.
// Debian's libfido2 has no PC/SC transport and go-libfido2 opens devices
// by path only, so libfido2 itself never sees the virtual key.
package fido2
