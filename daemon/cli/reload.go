package cli

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/keyfleet/keyfleet/daemon"
)

// reloadOnSIGHUP reloads srv's configuration with load on every SIGHUP
// until ctx ends or the returned stop is called. The server logs and
// audits each outcome.
func reloadOnSIGHUP(ctx context.Context, srv *daemon.Server, load func() (daemon.Config, error)) (stop func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				srv.Reload(ctx, load) // logged and audited by the server
			}
		}
	}()
	return func() {
		signal.Stop(hup)
		cancel()
		<-done
	}
}
