// Command keyfleet is the command line for keyfleetd's administrators,
// helpdesk, auditors and users. See docs/cli.md.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/keyfleet/keyfleet/internal/cli"
)

func main() {
	// Ctrl-C cancels the context: audit tail ends cleanly, requests stop.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}
