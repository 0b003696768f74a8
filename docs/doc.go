// Package docs holds keyfleet's documentation (the Markdown files beside
// this one) and the test that runs the shell examples of cli.md against a
// real keyfleetd, so that they cannot drift from the CLI (cli_test.go).
package docs
