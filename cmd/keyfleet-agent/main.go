// Command keyfleet-agent is the workstation agent: it lists connected
// YubiKeys and provisions them for users through keyfleetd.
//
//	keyfleet-agent devices
//	keyfleet-agent provision --server URL --token-file F [--ca F] --user NAME --piv [--reset] [--pin-file F]
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}
