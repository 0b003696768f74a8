// Package radius is keyfleetd's RADIUS listener (RFC 2865), for VPN
// gateways, Wi-Fi controllers and a FreeRADIUS in front of them: an
// Access-Request carries the user's one-time code in User-Password (or
// the directory password followed by the code, checked against LDAP), and
// the answer comes from daemon/core's verification, with its lockouts,
// replay protection, policy and audit.
//
// What the listener adds:
//   - Per-client shared secrets and source networks; packets from anywhere
//     else are dropped.
//   - Message-Authenticator (RFC 3579 §3.2) required on every request and
//     set, first, on every answer: the BlastRADIUS mitigation
//     (CVE-2024-3596). A request without one gets no answer.
//   - Retransmissions answered from a cache (RFC 5080 §2.2.2), so that a
//     NAS that resends a request does not have its code refused as a
//     replay.
//   - Access-Challenge with State when the user must pick one of several
//     factors, type a code after their password, or approve a push
//     (OutOfBand, the seam for out-of-band kinds). Open challenges are
//     kept behind Challenges: in the listener's memory, or shared by
//     several keyfleetd in PostgreSQL (cluster.RadiusChallenges); each
//     State is taken once, and a push wait is refused, with the advice to
//     sign in again, by a listener other than the one that sent the push.
//   - Access-Reject with a Reply-Message a VPN client can show: wrong
//     code, locked until when, suspended factor, enrol first (with a
//     first-login access pass when the operator turned them on).
//   - Token-bucket rate limits per client and per user name.
//   - Every decision audited through core: verifications by core itself,
//     with the NAS-Identifier, NAS-IP-Address and Calling-Station-Id of the
//     request (core.RequestInfo.Extra); refusals before any factor was
//     checked, challenges and sign-ins let through by the policy with
//     core.RecordLogin; floods of rate-limited or dropped requests
//     coalesced into one record a minute that counts them.
//
// Status-Server (RFC 5997) is answered, so a FreeRADIUS proxy can check
// the listener is alive. Accounting, CHAP, MS-CHAP and EAP are not served:
// a one-time code travels as a PAP password. docs/radius.md is the
// operator's guide.
package radius
