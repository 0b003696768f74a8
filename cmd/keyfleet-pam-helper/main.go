// Command keyfleet-pam-helper does the work of pam_keyfleet.so: the module
// starts it for each sign-in and relays its prompts (see package pam and
// docs/pam.md). It is not meant to be run by hand.
// `keyfleet-pam-helper --version` (or `version`) prints its build.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"log/syslog"
	"os"
	"os/signal"
	"syscall"

	"github.com/keyfleet/keyfleet/internal/version"
	"github.com/keyfleet/keyfleet/pam"
)

func main() {
	if len(os.Args) == 2 && (os.Args[1] == "--version" || os.Args[1] == "version") {
		fmt.Printf("keyfleet-pam-helper %s\n", version.Get())
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	os.Exit(pam.Run(ctx, os.Args[1:], os.Stdin, os.Stdout, logger()))
}

// logger writes to syslog (authpriv), or nowhere when there is none.
func logger() *slog.Logger {
	var w io.Writer = io.Discard
	if sw, err := syslog.New(syslog.LOG_AUTHPRIV|syslog.LOG_INFO, "pam_keyfleet"); err == nil {
		w = sw
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))
}
