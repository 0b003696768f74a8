// Package integration holds keyfleet's end-to-end tests: they build the
// real binaries, start keyfleetd on a temporary data folder on a loopback
// port, and drive it through the keyfleet CLI and the HTTP API.
package integration
