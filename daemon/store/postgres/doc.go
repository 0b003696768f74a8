// Package postgres is core.Store on PostgreSQL: records sealed by
// keyfleetd before they reach the database, personal data looked up by
// keyed hashes, and an audit chain that advances under the head row's
// lock in the transaction of each change, gap-free and in commit order
// across every keyfleetd on one database.
//
// Where things are:
//   - store.go: Open, Update (optimistic checks, retries), View, the
//     audit reads;
//   - tx.go: the read and write sets and the checks at commit;
//   - lazy.go: BEGIN with the first write, writes queued for the next
//     statement (few round trips);
//   - cache.go: records by key at the version last seen, checked at
//     commit;
//   - group.go: transactions ready at once share one commit;
//   - append.go: the audit head, pipelined or locked;
//   - durable.go: the barrier after commits made without waiting for
//     the disk, before anything is acknowledged;
//   - tokens.go: a token and its user in one statement (core.TokenReader);
//   - scan.go, facts.go, policy.go, list.go, records.go: reads and
//     writes by kind of record; migrate.go and migrations/: the schema.
package postgres
