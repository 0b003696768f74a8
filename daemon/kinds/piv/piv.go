package piv

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"github.com/keyfleet/keyfleet/plugins/sdk"
)

// Kind is the factor kind name.
const Kind = "piv"

// Config configures the kind. The zero value trusts Yubico's roots only
// and takes the time from each request.
type Config struct {
	// Roots are extra trusted attestation roots, in addition to Yubico's.
	Roots []*x509.Certificate
	// RootsFunc, when set, is asked for the extra roots at each enrolment
	// instead of Roots (keyfleetd reloads them on SIGHUP).
	RootsFunc func() []*x509.Certificate
	// Now is the clock used when a request carries no time. Default
	// time.Now.
	Now func() time.Time
	// Defaults are the enrolment requirements when policy asks nothing:
	// zero fields default to slot 9a, EC-P256, PIN once, touch always.
	Defaults Requirements
}

// Factor is the "piv" kind. It is safe for concurrent use.
type Factor struct {
	cfg Config
}

var _ sdk.Factor = (*Factor)(nil)

// ErrRejected: the key or its attestation does not meet the enrolment
// (untrusted root, wrong policy, old firmware, failed proof of
// possession). It is always wrapped with sdk.ErrInvalidRequest and the
// reason, which is safe to show to the operator.
var ErrRejected = errors.New("piv key rejected")

// New validates cfg and returns the kind.
func New(cfg Config) (*Factor, error) {
	for i, r := range cfg.Roots {
		if r == nil {
			return nil, fmt.Errorf("piv: trusted root %d is nil", i)
		}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	d, err := cfg.Defaults.withDefaults(Requirements{Slot: "9a", Algorithm: "EC-P256", PINPolicy: "once", TouchPolicy: "always"})
	if err != nil {
		return nil, fmt.Errorf("piv: defaults: %w", err)
	}
	cfg.Defaults = d
	return &Factor{cfg: cfg}, nil
}

// Describe says what the kind needs.
func (f *Factor) Describe(context.Context) (sdk.Info, error) {
	return sdk.Info{
		Kind: Kind, DisplayName: "YubiKey PIV (smart card)", Version: "1", Hardware: true,
		EnrolInputs: []sdk.Input{
			{Name: "slot_cert", Description: "slot attestation certificate (DER, base64)"},
			{Name: "device_cert", Description: "F9 device attestation certificate (DER, base64)"},
			{Name: "public_key", Description: "the generated key (DER SubjectPublicKeyInfo, base64); optional"},
			{Name: "signature", Description: "signature over SHA-256(challenge) by the slot key (base64)"},
			{Name: "handover", Description: "true when the PIN is a printed hand-over PIN: the factor stays pending"},
		},
		VerifyInputs: []sdk.Input{{Name: "signature", Description: "signature over SHA-256(challenge) by the slot key (base64)"}},
	}, nil
}

// roots are the extra trusted roots now.
func (f *Factor) roots() []*x509.Certificate {
	if f.cfg.RootsFunc != nil {
		return f.cfg.RootsFunc()
	}
	return f.cfg.Roots
}

func (f *Factor) now(t time.Time) time.Time {
	if t.IsZero() {
		return f.cfg.Now()
	}
	return t
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", sdk.ErrInvalidRequest, fmt.Sprintf(format, args...))
}

func rejected(format string, args ...any) error {
	return fmt.Errorf("%w: %w: %s", sdk.ErrInvalidRequest, ErrRejected, fmt.Sprintf(format, args...))
}
