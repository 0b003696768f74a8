// Command keyfleet-vkey is a virtual YubiKey 5 that plugs into PC/SC
// through vpcd, for demos, CI and plugin authors (see package
// agent/vkey).
//
//	keyfleet-vkey serve --vpcd 127.0.0.1:35963 --state card.json [--serial N] [--firmware 5.7.4] [--form-factor usb-c-nano] [--touch approve|deny|timeout] [--fido2=false] [--fido2-state fido2.json]
//	keyfleet-vkey ca export [--ca vkey-ca.pem] [--fido2 --fido2-ca fido2-ca.pem] [--out root.pem]
//	keyfleet-vkey reader setup [--port 35965] [--driver-dir DIR] [--conf-dir /etc/reader.conf.d]
//
// The state file keeps the card's keys and PINs across restarts; the CA
// file is its attestation root (shared by every card started with it).
// The card has a FIDO2 applet too (CTAP2 over CCID, backed by agent/fido2's
// software authenticator) with its own state and attestation CA files.
// `ca export` writes the root certificate a daemon must be told to trust
// (`--fido2`: the FIDO2 one). `reader setup` adds a one-slot vpcd reader to
// pcscd (agent/vkey/vpcdconf), so that the key shows as one YubiKey.
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
