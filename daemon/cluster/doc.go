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
//     outlives the keyfleetd that asked (a push wait excepted: the push
//     itself waits in the memory of the keyfleetd that sent it).
//
// Records are sealed under the store key as the store's are, and filed by
// hashes (a dump shows no cookie, session, username, client address or RADIUS
// State).
package cluster
