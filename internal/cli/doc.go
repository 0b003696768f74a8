// Package cli implements the keyfleet command line: the cobra command tree,
// the configuration file written by `keyfleet login`, human and JSON
// output, and the mapping of failures to documented exit codes.
//
// cmd/keyfleet only calls [Run]; tests call it in-process with their own
// arguments, streams and environment.
package cli
