// Package attest turns hardware attestation into verified [Evidence], or a
// precise reason for rejecting it.
//
// It verifies two kinds of attestation:
//
//   - PIV (YubiKey): a slot attestation certificate, the F9 device
//     certificate that signed it, and the chain from the F9 certificate to
//     Yubico's roots ([VerifyPIV]), or the same pair carried inside a
//     certificate signing request ([VerifyPIVCSR]).
//   - FIDO2 / WebAuthn registrations ([VerifyFIDO2]): the attestation object
//     and client data of a navigator.credentials.create() call, checked
//     against the challenge, origins and RP ID the caller expected, with the
//     attestation certificate chain verified to configured roots.
//
// The package is pure: it does no I/O, never logs, and keeps no mutable
// global state. Every verification takes its clock from the caller
// (PIVOptions.Time, FIDO2Expectation.Time); the only exception, go-webauthn's
// vendor-root check for android-key and apple statements, is documented on
// [VerifyFIDO2]. Yubico's roots are built in (see [BuiltinPIVRoots] and
// [BuiltinFIDORoots]); any other root is trusted only when the caller passes
// it.
//
// Errors wrap one of the sentinel errors (ErrMalformed, ErrUntrustedChain,
// ErrExpired, ...) in an [*Error] that says, in plain words, what went wrong.
// Callers branch with errors.Is and show err.Error() to people.
//
// Known vulnerable hardware is reported, never judged: see [KnownAdvisories].
// What to do about an advisory is policy's decision.
package attest
