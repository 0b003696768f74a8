// Package policy decides who must have multi-factor authentication, which
// factors count, and whether a user complies, from a versioned YAML policy
// document.
//
// The package is pure: it does no I/O, never logs and never reads the clock.
// The caller (the daemon) maps its users and factors to [User] and [Factor],
// passes the time, and persists what the package reports back: the first
// time each rule applied to each user ([Decision].NewlyApplied), approved
// [Exemption]s, and every policy document version.
//
// The pieces:
//
//   - [Parse] reads a document; every problem it reports names the file,
//     line and field ("policy.yaml:12: rules[1].require.min_factors: must
//     be at least 1, got 0") in a [*ParseError] wrapping [ErrInvalidDocument].
//   - [Evaluate] combines every rule that matches a user into the strictest
//     requirement (see docs/policy.md, "How rules combine"), adds the
//     built-in invariants, and returns a [Decision]: compliant, in grace
//     until a deadline, or non-compliant, with reasons a helpdesk can read
//     and the next steps for the user.
//   - [CheckEnrolment] and [CheckVerification] enforce the policy when a key
//     is enrolled and when a factor is used; both return a
//     [*RequirementError] wrapping [ErrRequirement].
//   - [CanRemove] guards the last active factor of a person (ErrLastFactor).
//   - [Diff] and [Weakens] compare two documents requirement by requirement,
//     so weakening changes can go to two-person approval.
//   - [Report] and [Tally] aggregate decisions into a [Compliance] report.
//
// Known vulnerable hardware comes from attest's advisory table
// ([attest.KnownAdvisories]), matched again at every evaluation against the
// evidence stored with each factor, so a new advisory finds keys enrolled
// before it was published.
package policy
