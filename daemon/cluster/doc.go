// Package cluster is what several keyfleetd on one PostgreSQL database
// share besides the store:
//
//   - leadership ([Elector]): one keyfleetd at a time holds a PostgreSQL
//     advisory lock on a connection of its own and runs what must run
//     once (the event sinks, the sweeps, the compliance gauges); when it
//     dies its session ends, the lock is free, and another takes over
//     (after waiting long enough for a leader whose session ended to have
//     stopped), resuming the sinks from their stored cursors;
//   - web sessions ([Sessions], a web.SessionStore): a browser signed in
//     through one keyfleetd is signed in on all of them;
//   - the attempt limiter's buckets ([Buckets], a ratelimit.Shared): the
//     per-address and per-target limits on guessing codes and passes
//     count across every keyfleetd, with the decisions the limiter makes
//     in memory;
//   - the RADIUS listener's open challenges ([RadiusChallenges], a
//     radius.Challenges): a NAS may send the answer to an Access-Challenge
//     to any keyfleetd, each State is taken once, and a challenge
//     outlives the keyfleetd that asked;
//   - pending pushes ([Pushes], a push.Board): a push begun on one
//     keyfleetd reaches companions connected to any (LISTEN/NOTIFY on
//     keyfleet_push with only an opaque id), is answered on any (claimed
//     once), and its outcome is taken on any, once; it outlives the
//     keyfleetd that began it and still runs out at its deadline.
//
// Records are sealed under the store key as the store's are, and filed by
// hashes (a dump shows no cookie, session, username, client address, RADIUS
// State or push).
package cluster
