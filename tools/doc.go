// Package tools pins the build tools keyfleet runs through the go command
// (a tool directive in go.mod): nfpm, which `make package` builds with
// `go -C tools build`. They live in a module of their own so that their
// dependencies stay out of keyfleet's binaries and keyfleet's go.mod. See
// docs/dependencies.md.
package tools
