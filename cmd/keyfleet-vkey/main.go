// Command keyfleet-vkey is a virtual YubiKey 5 that plugs into PC/SC
// through vpcd, for demos, CI and plugin authors (see package
// agent/vkey).
//
//	keyfleet-vkey serve --vpcd 127.0.0.1:35963 --state card.json [--serial N] [--firmware 5.7.4] [--form-factor usb-c-nano] [--touch approve|deny|timeout]
//	keyfleet-vkey ca export [--ca vkey-ca.pem] [--out root.pem]
//
// The state file keeps the card's keys and PINs across restarts; the CA
// file is its attestation root (shared by every card started with it).
// `ca export` writes the root certificate a daemon must be told to trust.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
