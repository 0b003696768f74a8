// Command keyfleet-loadgen drives a running keyfleetd from its own
// process and prints what it measured (package internal/loadgen). The
// benchmark scripts run it: scripts/bench-deployed.sh and
// scripts/bench-large.sh.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}
