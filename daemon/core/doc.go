// Package core is keyfleet's domain: users, factors, devices, enrolments,
// API tokens, approvals and the audit trail of every change to them.
//
// A [Service] holds the lifecycle rules. Every method takes the [Principal]
// acting, checks that the principal may act (deny by default, see
// authz.go), and runs one store transaction that makes the change and
// appends its audit event together: there is no change without its audit
// record and no audit record without its change.
//
// core declares what it needs from the outside and nothing more: a [Store]
// (Badger in daemon/store, in-memory Badger for tests), a [Sealer] for
// secret material, and a [FactorKind] per kind of factor (built-in kinds and
// plugins look the same). It does no network I/O.
//
// Sensitive actions (revoking or deleting a factor, resetting a user's MFA,
// disabling or deleting a user, exempting a user from the policy, applying
// a policy that weakens a requirement) never act at once: they create an
// [Approval] that a different principal with the right role approves, and
// approval executes the action in the same transaction that records it.
package core
