package vkeytest

import (
	"errors"
	"testing"
)

// Shared is the one pcscd of a test binary. TestMain starts it with
// StartShared and stops it after m.Run; tests that need PC/SC call Need
// first. When pcscd could not start, Need fails the test with the reason
// and the Debian packages to install: a missing program fails a test, it
// never skips it.
//
// The running pcscd is embedded, so pcsc.Slots and pcsc.Plug read as they
// do on a *PCSCD once Need has passed.
type Shared struct {
	*PCSCD
	// Err is why pcscd did not start (nil when it runs).
	Err error
}

// StartShared starts the test binary's pcscd (see StartPCSCD) and keeps
// any failure for Need to report.
func StartShared() *Shared {
	p, err := StartPCSCD()
	return &Shared{PCSCD: p, Err: err}
}

// Need returns the running pcscd, or fails tb, saying why it could not
// start and what to install or stop.
func (s *Shared) Need(tb testing.TB) *PCSCD {
	tb.Helper()
	if s.PCSCD == nil {
		tb.Fatal(s.why())
	}
	return s.PCSCD
}

func (s *Shared) why() string {
	switch {
	case errors.Is(s.Err, ErrNotInstalled):
		return "this PC/SC end-to-end test needs pcscd and vpcd: " + s.Err.Error() + "; scripts/deps.sh installs every package the tests need"
	case errors.Is(s.Err, ErrBusy):
		return "this PC/SC end-to-end test starts its own pcscd: " + s.Err.Error() + " (stop it, e.g. 'systemctl stop pcscd.socket pcscd', and run the test again)"
	}
	return "this PC/SC end-to-end test could not start pcscd (Debian packages pcscd and vsmartcard-vpcd): " + errString(s.Err)
}

func errString(err error) string {
	if err == nil {
		return "no reason given"
	}
	return err.Error()
}

// Stop stops the pcscd StartShared started, if it did.
func (s *Shared) Stop() {
	if s.PCSCD != nil {
		s.PCSCD.Stop()
	}
}
