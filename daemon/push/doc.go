// Package push is keyfleetd's side of out-of-band factors (the push kind,
// plugins/push): it delivers a push to the user's companion, keeps the
// verification pending until the companion answers or its deadline
// passes, and lets the application wait for the outcome. It implements
// core.OutOfBand; the factor's logic (numbers, signatures) stays in the
// kind.
//
// Delivery goes two ways. Companions keep a channel open to keyfleetd
// (GET /v1/push/stream, Server-Sent Events, or GET /v1/push/pending as a
// long poll), authenticated by the device key: every request carries a
// Keyfleet-Device header signed over its method, path and time (see
// [Hub.Authenticate]). Organisations can also route a notice through a
// relay of their own ([Gateway]: a signed webhook, or an ntfy-compatible
// publisher) to wake a phone; a notice says who is signing in to what,
// never the numbers, and nothing any relay sees lets it answer: an answer
// needs the device's signature over the verification's id.
//
// Fatigue and fraud: at most Config.MaxPerUser pushes per user per
// Config.Period (ErrTooMany beyond), a push nobody answers is closed at
// its deadline and counted on its factor (the compliance report lists
// factors with repeated unanswered pushes), and "this wasn't me" locks
// the user's pushes and raises a high-severity event (core does both).
//
// With one keyfleetd (Badger) pending pushes live in this process's
// memory: a keyfleetd that restarts forgets them, their verifications fail
// as closed, and their companions drop them when they reconnect. Nothing
// about a pending push is written to the store until it is answered or
// runs out. With several keyfleetd on one PostgreSQL database the hub is
// given a [Board] (cluster.Pushes): pushes are filed there, each
// keyfleetd forwards the board's notices to its own streams and waiters,
// an answer reaching any keyfleetd claims the push there once, and every
// keyfleetd sweeps pushes past their deadline (shared.go).
package push
