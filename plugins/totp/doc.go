// Package totp is keyfleet's TOTP factor kind: time-based one-time codes
// from an authenticator app (RFC 6238), served as a plugin by the binary
// keyfleet-plugin-totp (cmd/keyfleet-plugin-totp) and usable in-process as
// an sdk.Factor.
//
// Enrolment (BeginEnrol) generates a seed and returns it once in Display,
// as an otpauth:// URI and as base32 text; the seed is kept only in the
// factor's state, which the host seals. FinishEnrol requires a first valid
// code, so a factor exists only once the user's app has the seed.
//
// Verification accepts the code of the current time step or of one step
// either side (RFC 6238 §5.2, "at most one time step" of network delay and
// clock drift), compares in constant time, and rejects a code whose time
// step is not after the last accepted one (§5.2: "the verifier MUST NOT
// accept the second attempt of the OTP after the successful validation
// has been issued for the first OTP"). The returned state carries the new
// last accepted step; a replayed code is OK=false and Suspicious.
//
// Policy may set, through the enrolment's Options: "algorithm" (SHA1,
// SHA256, SHA512; default SHA1), "digits" (6 or 8; default 6), "period"
// (seconds, 15 to 120; default 30) and "issuer" (default "keyfleet"); any
// other option is refused, so a mistyped one is not silently dropped. The
// daemon fills them from the policy and from what the enrolment's creator
// asked within it (docs/policy.md).
// Codes are computed by github.com/pquerna/otp (RFC 4226 §5.3 dynamic
// truncation over the RFC 6238 time-step counter).
package totp
