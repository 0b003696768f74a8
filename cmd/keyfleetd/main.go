// Command keyfleetd is keyfleet's daemon: `keyfleetd init` makes a data
// folder, `keyfleetd serve` runs the API on it.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/keyfleet/keyfleet/daemon/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}
