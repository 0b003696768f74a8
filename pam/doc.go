// Package pam is the keyfleet PAM module's logic: pam_keyfleet.so
// (pam/module, a small C module) asks for a second factor in a Linux
// login's or OpenSSH's keyboard-interactive conversation, and runs
// keyfleet-pam-helper, whose work this package does.
//
// For each sign-in the helper reads who signs in from the module, asks
// keyfleetd over HTTPS (with a service token from a root-only file) for
// the user's MFA status, and then:
//   - a user with a factor that answers with a code (TOTP, HOTP) is asked
//     for it, picking one first when there are several; the code is
//     checked with POST /v1/verify/begin and /finish, so core's lockouts,
//     replay protection, policy and audit apply;
//   - a user with no factor whom the policy does not ask yet is let in,
//     told the deadline when there is one; a user past it is refused with
//     what to do (and a first-login pass when configured);
//   - when keyfleetd cannot answer (down, unreachable, failing, or
//     refusing the host's token) the sign-in is refused, unless the user
//     is in a configured fallback group.
//
// The helper is a process of its own rather than Go inside the module:
// sshd forks after loading PAM modules, which a Go runtime does not
// survive. docs/pam.md is the operator's guide.
package pam
