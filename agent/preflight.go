package agent

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/keyfleet/keyfleet/api"
)

// ErrPreflight: keyfleetd refused the key before anything on it changed
// (it belongs to someone else, was returned and not wiped, is lost; its
// attestation would not be trusted; the piv kind or a policy rule would
// refuse it; the enrolment is closed). The wrapped daemon problem says
// why.
var ErrPreflight = errors.New("keyfleetd refused this key before anything on it was changed")

// PreflightPIV asks the daemon whether enrolment id can be completed on
// the key in tok, from what can be read without changing it: its serial,
// firmware and form factor and its F9 device certificate. keyfleetd
// refuses a key the enrolment's kind or the policy would refuse at
// completion. Errors wrap ErrPreflight (with the daemon's problem), or
// are the token's.
func PreflightPIV(ctx context.Context, d Daemon, tok PIVToken, id string, info DeviceInfo) error {
	dev, err := tok.DeviceCertificate()
	if err != nil {
		return fmt.Errorf("reading the key's attestation certificate: %w", err)
	}
	in := api.Preflight{Vendor: "Yubico", Serial: strconv.FormatUint(uint64(info.Serial), 10), Firmware: info.Firmware,
		FormFactor: info.FormFactorCode}
	if dev != nil {
		in.DeviceCert = dev.Raw
	}
	if _, err := d.PreflightEnrolment(ctx, id, in); err != nil {
		return fmt.Errorf("%w: %w", ErrPreflight, err)
	}
	return nil
}

// refusedByDaemon reports whether err is keyfleetd's answer refusing the
// request (a 4xx problem): it kept nothing. Anything else (no answer, a
// 5xx) leaves the outcome unknown.
func refusedByDaemon(err error) bool {
	var p *api.Problem
	return errors.As(err, &p) && p.Status >= 400 && p.Status < 500
}

// RefusedError is a provisioning that failed after the key was changed,
// and what became of the key: put back to factory settings (Restored), or
// not (RestoreErr says why; the next run then needs --reset).
type RefusedError struct {
	Cause      error
	Restored   bool
	RestoreErr error
}

func (e *RefusedError) Error() string {
	if e.Restored {
		return fmt.Sprintf("%v. The key's PIV applet was put back to factory settings (nothing of this attempt is kept on it): "+
			"fix what keyfleetd said, then run the same command again, without --reset", e.Cause)
	}
	return fmt.Sprintf("%v. Putting the key back to factory settings failed too (%v): run the same command again with --reset", e.Cause, e.RestoreErr)
}

func (e *RefusedError) Unwrap() error { return e.Cause }

// restore puts a key this run changed back to factory settings, and says
// so with cause. The key was factory fresh (or reset by this run) before
// the changes, so nothing else is lost.
func restore(tok PIVToken, cause error) error {
	if err := tok.Reset(); err != nil {
		return &RefusedError{Cause: cause, RestoreErr: err}
	}
	return &RefusedError{Cause: cause, Restored: true}
}
