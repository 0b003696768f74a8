// Package ratelimit is keyfleetd's one limiter for attempts that need no
// token: redeeming an enrolment code or a temporary access pass (through
// the API or on the web pages' /welcome) and opening a break-glass session.
// The API (daemon/httpapi) and the pages (daemon/web) share one [Limiter],
// so a guesser gains nothing by switching between them.
//
// Each attempt is counted twice, in token buckets (golang.org/x/time/rate):
// once for the client address it comes from (daemon/clientaddr; an IPv6
// client is counted by its /64, which one host usually holds whole) and
// once for the account or credential it is aimed at, when the attempt names
// one before it is checked ([CodeTarget]: the enrolment an enrolment code
// names). It goes ahead only when both buckets have a token, and then takes
// one from each; a refused attempt takes nothing. The address bucket slows
// one client down; the target bucket slows a guesser who spreads over many
// addresses against one account.
//
// With several keyfleetd on one PostgreSQL database, the buckets live in
// the database instead ([Config.Shared]; daemon/cluster), so that attempts
// spread over the keyfleetd count together; the decisions are the same.
//
// Memory is bounded: a bucket that has filled up again carries no
// information and is dropped (oldest first, a constant amount of work per
// attempt), and at most Config.MaxEntries buckets are kept, the least
// recently used going first when a new one is needed.
package ratelimit
