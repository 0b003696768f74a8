// Package piv is the daemon's built-in "piv" factor kind: a key generated
// in a YubiKey's PIV slot, proven by Yubico attestation (package attest)
// and by a signature over the enrolment challenge, then verified by
// signatures over the daemon's challenges.
//
// It implements [sdk.Factor] like any plugin, so the lifecycle treats it as
// every other kind. It does no I/O and never logs. Trust is explicit:
// Yubico's PIV roots are built in (package attest), and Config.Roots adds
// others (a virtual key's CA, a test CA), never by default.
//
// Wire types are in package api (PIVEnrolment, PIVChallenge,
// PIVAssertion). The enrolment's requirements come from the policy through
// BeginEnrolRequest.Options (keys api.PIVParam*) and are kept in the
// enrolment's sealed state, so FinishEnrol checks the key against what was
// asked.
package piv
