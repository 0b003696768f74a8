// Package agent holds the workstation agent's workflows: provisioning a
// hardware key for a user at the IT desk (and, later, the user's own
// enrolment, activation and verification).
//
// It declares what it needs from the hardware (PIVToken, PIVOpener) and
// from the daemon (Daemon); agent/piv implements the first with piv-go
// (cgo), api/client the second. It never imports daemon/...
//
// Management key: provisioning sets a new random AES-192 management key
// and keeps it on the key itself, PIN-protected, the way YubiKey tooling
// does (ykman's "PIN-protected management key"), rather than escrowing it
// in the daemon. The daemon then never holds a secret that can change a
// user's key; whoever has the PIN can manage the key, and a key whose
// PIN and PUK are lost is reset, not recovered.
//
// PINs and PUKs are never logged, never sent to the daemon, and never
// appear in errors.
package agent
