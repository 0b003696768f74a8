// Package loadgen drives a deployed keyfleetd from another process, as
// users and applications do, and measures it: throughput, latency
// percentiles, the CPU the daemon and its plugins spend per operation and
// their peak resident memory (read from /proc). It is what `make bench`
// and `make bench-large` run (scripts/bench-deployed.sh,
// scripts/bench-large.sh) through the keyfleet-loadgen command; its
// figures are in docs/benchmarks.md.
//
// A TOTP verification can only use a code of a time step after the last
// one its factor accepted (replay protection), within one step of now. A
// [Fixture] therefore holds many users with TOTP factors and remembers the
// last step it used of each; a run uses every factor's next two steps and
// waits, when it must, for the clock to give fresh ones.
package loadgen
