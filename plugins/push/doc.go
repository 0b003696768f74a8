// Package push is keyfleet's push factor kind: the user approves a
// sign-in on a companion (the web companion at /me/push, or
// keyfleet-agent push on a desktop) that holds a device key pair. It is
// served as a plugin by keyfleet-plugin-push (cmd/keyfleet-plugin-push)
// and is usable in-process as an sdk.Factor. It is an out-of-band kind
// (sdk.Info.OutOfBand): the answer comes from the device through
// keyfleetd, not from the application that asked.
//
// Enrolment: BeginEnrol draws a nonce (Params "nonce"). The companion
// makes a P-256 key pair (non-extractable where the platform allows: a
// WebCrypto key in the browser), and answers with its public key, a
// device name and a signature over [EnrolMessage]: the first signed
// answer, which proves the companion holds the key. The factor keeps the
// public key; nothing secret exists on the server side.
//
// Verification: BeginVerify draws a two-digit number and two other
// two-digit numbers. The Prompt (for the application) carries the number
// to show on the sign-in screen; the Delivery (for the device, sent over
// its channel and through relays) carries who is signing in, to what,
// from where and when, and the three numbers in random order, never which
// is right. The device signs [Answer.Message]: the verification id, the
// factor id, the number picked, the decision (approve, deny, or report:
// "this wasn't me") and the device's time. FinishVerify checks the
// signature with the enrolled key, that the answer is for this
// verification, that the number is the one shown, and the deadline (60 s
// unless the enrolment's "timeout" option says otherwise). Single use is
// the host's: a verification is finished once, and an answer signs its
// verification's id, so it cannot count for another.
//
// Nothing a relay or the channel carries lets its reader approve: the
// choices alone do not say which number is right, and an answer needs the
// device's signature.
//
// Options (from the policy or the enrolment's creator): "number_matching"
// ("true", the default, or "false": approve or deny only) and "timeout"
// (seconds to answer, 15 to 300; default 60).
//
// Signatures are ECDSA P-256 with SHA-256, encoded as r‖s (64 bytes,
// IEEE P1363, as WebCrypto makes them), base64url without padding; public
// keys are the uncompressed point (SEC 1 §2.3.3, 65 bytes, WebCrypto's
// "raw" export), base64url.
package push
