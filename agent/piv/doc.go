// Package piv adapts piv-go (cgo, PC/SC through libpcsclite) to the
// agent's PIVToken and PIVOpener interfaces. It is the agent's only PIV
// cgo code.
package piv
