package core

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/attest"
	"github.com/keyfleet/keyfleet/policy"
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
// pre-flight (the built-in piv kind does): a check of the key as an agent
// reads it before changing it (in.DeviceCert, its device attestation
// certificate, DER, against the roots the kind will trust at completion;
// the kind's own requirements in the enrolment's params), returning the
// evidence completion would record as far as it is known before the key
// is set up, for the policy to judge. Its errors say, in words, why the
// key would be refused.
type DeviceChecker interface {
	CheckDevice(in api.Preflight, params []byte, at time.Time) (*attest.Evidence, error)
}

// PreflightEnrolment checks, before an agent resets a key or changes its
// PIN and management key, what completing enrolment id on that key would
// check: the enrolment is open and the principal may complete it, the
// device may carry a factor for the enrolment's user, and (when the kind
// is a DeviceChecker, as piv is) the key's device certificate chains to a
// trusted root, it meets the kind's requirements, and the policy's
// enrolment rules for the user (advisories, firmware, model, FIPS,
// vendor, PIN and touch policies) accept the key it will hold. It changes
// nothing. Errors: ErrNotFound, ErrEnrolmentClosed, *ForbiddenError,
// ErrInvalid (the device or its certificate would be refused),
// ErrPolicyViolation (wrapping a *policy.RequirementError); each message
// says what to do.
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
	err = s.store.View(ctx, func(tx ReadTx) error { return preflightDevice(tx, in, u, &out) })
	if err != nil {
		return Preflight{}, err
	}
	ev, err := s.preflightAttestation(e, in, &out)
	if err != nil || ev == nil {
		return out, err
	}
	return out, s.preflightPolicy(ctx, u, e.Kind, ev, &out)
}

// preflightDevice checks the key may carry a factor for u.
func preflightDevice(tx ReadTx, in api.Preflight, u User, out *Preflight) error {
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
}

// preflightAttestation checks a key's device certificate against the
// roots its kind will trust at completion, and returns what the kind
// says the key will attest (nil when the kind checks no device).
func (s *Service) preflightAttestation(e Enrolment, in api.Preflight, out *Preflight) (*attest.Evidence, error) {
	c, ok := s.kinds[e.Kind].Factor.(DeviceChecker)
	if !ok {
		return nil, nil
	}
	if len(in.DeviceCert) == 0 {
		return nil, invalid("device_cert", "the key's device (F9) attestation certificate is required to check its attestation before the key is changed")
	}
	ev, err := c.CheckDevice(in, e.Params, s.now())
	if err != nil {
		return nil, invalid("device_cert", "%v; nothing on the key was changed", err)
	}
	out.Checks = append(out.Checks, fmt.Sprintf("its attestation chains to a trusted root (firmware %s)", ev.Firmware))
	return ev, nil
}

// preflightPolicy refuses a key whose evidence-to-be the current policy's
// enrolment rules for u refuse, as completion would after the key was
// changed.
func (s *Service) preflightPolicy(ctx context.Context, u User, kind string, ev *attest.Evidence, out *Preflight) error {
	return s.store.View(ctx, func(tx ReadTx) error {
		_, doc, err := s.currentPolicy(tx)
		if err != nil {
			return err
		}
		f := policy.Factor{Kind: kind, State: api.FactorActive, Evidence: policyEvidence(ev), Hardware: s.kinds[kind].info.Hardware}
		if err := policy.CheckEnrolment(doc, policyUser(u), f); err != nil {
			return fmt.Errorf("%w: the policy refuses this key for %s%s: %w; nothing on the key was changed: use a key the policy accepts ('keyfleet policy show' lists the requirements)",
				ErrPolicyViolation, u.Username, byRules(err), err)
		}
		out.Checks = append(out.Checks, fmt.Sprintf("the policy's rules for %s accept a %s with firmware %s", u.Username, ev.Model, ev.Firmware))
		return nil
	})
}

// byRules names the rules a policy.CheckEnrolment error says refuse the
// factor: " (rule finance)"; "" when it names none.
func byRules(err error) string {
	var re *policy.RequirementError
	if !errors.As(err, &re) {
		return ""
	}
	names := re.Rules
	switch len(names) {
	case 0:
		return ""
	case 1:
		return " (rule " + names[0] + ")"
	}
	return " (rules " + strings.Join(names, ", ") + ")"
}
