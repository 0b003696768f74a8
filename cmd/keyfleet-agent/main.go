// Command keyfleet-agent is the workstation agent: it lists connected
// YubiKeys, provisions them for users at the IT desk, lets users enrol and
// activate their own key, and proves possession of an enrolled key,
// through keyfleetd; it answers the challenges keyfleet gets for actions
// that need a fresh proof with a person's own key (prove). See docs/agent.md.
//
//	keyfleet-agent devices
//	keyfleet-agent provision --user NAME [--piv] [--fido2] [--reset] [--pin-file F | --ask-pin]
//	keyfleet-agent provision --batch users.csv
//	keyfleet-agent enroll [--code CODE]
//	keyfleet-agent activate
//	keyfleet-agent verify --user NAME [--kind piv|fido2]
//	keyfleet-agent prove [--challenge FILE] [--pin-file F] [--format json|header]
//
// It follows keyfleet's command-line conventions: double-dash flags, the
// login that `keyfleet login` saved, KEYFLEET_SERVER, KEYFLEET_TOKEN and
// KEYFLEET_CA.
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
