// Package checkpoint anchors the audit log's head outside the store.
//
// The audit chain (daemon/audit) shows any record edited, removed or
// reordered, but not a log cut short together with its stored head: a
// damaged write-ahead log replayed only in part, or a store copied back
// from an older backup, is a shorter chain that verifies. A checkpoint is
// a signed statement "the chain ended at seq N with hash H at time T",
// kept where a fault in the store, or someone rolling it back, does not
// reach at the same time, in the manner of Certificate Transparency's
// signed tree heads:
//
//   - a file outside the data folder ([File]),
//   - the event sinks, as an audit.checkpoint event ([Events]),
//   - optionally a witness: an HTTPS service that keeps the newest
//     checkpoint it was given ([Witness]).
//
// A [Manager] writes one every N events or every interval. At start-up and
// in audit verify, keyfleetd takes the newest checkpoint it can find
// ([Newest]) and checks the store against it ([VerifyFrom]): a store
// behind the checkpoint, or one whose record at the checkpoint's sequence
// has another hash, is refused (or, by configuration, served with a loud
// warning). [VerifyExport] checks an exported audit log against a
// checkpoint offline.
//
// Checkpoints are signed with Ed25519 (RFC 8032). The private key is made
// once and kept sealed under the sealing key (daemon/seal), like every
// other secret, in the data folder's keys/; its public key is in every
// checkpoint and audit.checkpoint event, so an auditor can pin it.
//
// The signed message is text:
//
//	keyfleet-checkpoint-v1
//	<seq, decimal>
//	<chain hash, 64 hex digits>
//	<time, RFC 3339 in UTC with nanoseconds>
package checkpoint
