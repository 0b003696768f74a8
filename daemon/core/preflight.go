package core

import (
	"context"
	"fmt"
	"time"

	"github.com/keyfleet/keyfleet/api"
)

// Preflight is what an agent learns before it changes a key: the device
// as keyfleetd knows it (nil for a key it never saw), what the
// enrolment asks of the key, and the checks that passed.
type Preflight struct {
	Device *Device
	Params []byte
	Checks []string
}

// DeviceChecker is what a hardware kind may offer the enrolment
// pre-flight (the built-in piv kind does): a check of the key's device
// attestation certificate (DER) against the roots it will trust at
// completion, returning the firmware it names.
type DeviceChecker interface {
	CheckDevice(deviceCert []byte, at time.Time) (firmware string, err error)
}

// PreflightEnrolment checks, before an agent resets a key or changes its
// PIN and management key, what completing enrolment id on that key would
// check first: the enrolment is open and the principal may complete it,
// the device may carry a factor for the enrolment's user, and (for PIV,
// when the kind is a DeviceChecker) the key's device certificate
// chains to a trusted root. It changes nothing. Errors: ErrNotFound,
// ErrEnrolmentClosed, *ForbiddenError, ErrInvalid (the device or its
// certificate would be refused; the message says what to do).
func (s *Service) PreflightEnrolment(ctx context.Context, p Principal, id string, in api.Preflight) (Preflight, error) {
	if in.Vendor == "" || in.Serial == "" {
		return Preflight{}, invalid("serial", "the key's vendor and serial are required")
	}
	e, u, err := s.enrolmentFor(ctx, p, id)
	if err != nil {
		return Preflight{}, err
	}
	out := Preflight{Params: e.Params, Checks: []string{fmt.Sprintf("enrolment %s for %s is open until %s",
		e.ID, u.Username, e.ExpiresAt.UTC().Format("2006-01-02 15:04 MST"))}}
	err = s.store.View(ctx, func(tx ReadTx) error {
		d, err := tx.DeviceBySerial(in.Vendor, in.Serial)
		switch {
		case isNotFound(err):
			out.Checks = append(out.Checks, fmt.Sprintf("%s key %s is new to keyfleetd", in.Vendor, in.Serial))
			return nil
		case err != nil:
			return err
		}
		if err := attachable(d, u.ID); err != nil {
			return err
		}
		out.Device = &d
		out.Checks = append(out.Checks, fmt.Sprintf("%s key %s (%s) may carry a factor for %s", in.Vendor, in.Serial, d.State, u.Username))
		return nil
	})
	if err != nil {
		return Preflight{}, err
	}
	return out, s.preflightAttestation(e.Kind, in, &out)
}

// preflightAttestation checks a key's device certificate against the
// roots its kind will trust at completion.
func (s *Service) preflightAttestation(kind string, in api.Preflight, out *Preflight) error {
	c, ok := s.kinds[kind].Factor.(DeviceChecker)
	if !ok {
		return nil
	}
	if len(in.DeviceCert) == 0 {
		return invalid("device_cert", "the key's device (F9) attestation certificate is required to check its attestation before the key is changed")
	}
	fw, err := c.CheckDevice(in.DeviceCert, s.now())
	if err != nil {
		return invalid("device_cert", "%v; nothing on the key was changed", err)
	}
	out.Checks = append(out.Checks, fmt.Sprintf("its attestation chains to a trusted root (firmware %s)", fw))
	return nil
}
