// Package proof defines keyfleet's fresh proof of possession: a challenge
// that a person answers with one of their own factors, bound to one action.
//
// A [Binding] names the action ("approval.approve"), its subject (the
// approval's id) and what the action will do ([Binding.Details]: for an
// approval, the request's action, target and parameters). Its [Digest] is
// a SHA-256 over a canonical, length-prefixed encoding, and the challenge
// the key signs is [Challenge](nonce, binding): the key's signature (a PIV
// signature or a WebAuthn assertion over the challenge) therefore commits
// to that one action. The daemon keeps the binding's digest in the sealed,
// single-use verification it hands out, and refuses the answer for any
// other action, subject or details.
//
// [Catalogue] lists every action that needs a proof and how strong it must
// be ([Hardware]: the person's own PIV or FIDO2 factor; [SecondFactor]:
// any of their active factors, for people who have only an authenticator
// app). daemon/core enforces it; docs/security.md renders it.
//
// The package is pure: no I/O, no logging, no clock.
package proof
