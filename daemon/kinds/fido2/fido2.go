package fido2

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"time"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/plugins/sdk"
)

// Kind is the factor kind name.
const Kind = "fido2"

// Config configures the kind. RPID is required; every other field has a
// safe default.
type Config struct {
	// RPID is the relying party ID credentials are scoped to: the
	// dashboard's host name or a registrable suffix of it
	// ("keyfleet.example.com" or "example.com"). Required.
	RPID string
	// RPDisplayName is shown by the key's client. Default RPID.
	RPDisplayName string
	// Origins are the exact origins accepted in clientDataJSON
	// ("https://keyfleet.example.com:8443"). Default "https://" + RPID.
	Origins []string
	// Roots are extra trusted attestation roots, in addition to Yubico's
	// FIDO roots.
	Roots []*x509.Certificate
	// RootsFunc, when set, is asked for the extra roots at each
	// registration instead of Roots (keyfleetd reloads them on SIGHUP).
	RootsFunc func() []*x509.Certificate
	// Now is the clock used when a request carries no time. Default
	// time.Now.
	Now func() time.Time
	// RequireAttestation refuses keys whose attestation does not chain to
	// a trusted root (self and none attestation included).
	RequireAttestation bool
	// UserVerification is asked of keys: "required", "preferred" (default)
	// or "discouraged". "required" also rejects assertions without UV.
	UserVerification string
	// EnterpriseAttestation asks for "enterprise" attestation (the key's
	// serial) instead of "direct". Keys and clients that do not allow it
	// for this RP ID answer with direct attestation.
	EnterpriseAttestation bool
	// Timeout is how long a client waits for the user. Default 2 minutes.
	Timeout time.Duration
}

var userVerifications = []string{"required", "preferred", "discouraged"}

// Factor is the "fido2" kind. It is safe for concurrent use.
type Factor struct {
	cfg Config
}

var _ sdk.Factor = (*Factor)(nil)

// ErrRejected: the key or its registration does not meet the enrolment
// (untrusted root, wrong challenge or origin, no attestation where one is
// required). It is always wrapped with sdk.ErrInvalidRequest and the
// reason, which is safe to show to the operator.
var ErrRejected = errors.New("fido2 key rejected")

// New validates cfg and returns the kind.
func New(cfg Config) (*Factor, error) {
	if cfg.RPID == "" {
		return nil, errors.New("fido2: rp_id is required")
	}
	if cfg.RPDisplayName == "" {
		cfg.RPDisplayName = cfg.RPID
	}
	if len(cfg.Origins) == 0 {
		cfg.Origins = []string{"https://" + cfg.RPID}
	}
	for _, o := range cfg.Origins {
		if u, err := url.Parse(o); err != nil || u.Scheme == "" || u.Host == "" || u.Path != "" {
			return nil, fmt.Errorf("fido2: origin %q is not scheme://host[:port]", o)
		}
	}
	for i, r := range cfg.Roots {
		if r == nil {
			return nil, fmt.Errorf("fido2: trusted root %d is nil", i)
		}
	}
	if cfg.UserVerification == "" {
		cfg.UserVerification = "preferred"
	}
	if !slices.Contains(userVerifications, cfg.UserVerification) {
		return nil, fmt.Errorf("fido2: user_verification %q is not one of %v", cfg.UserVerification, userVerifications)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 2 * time.Minute
	}
	cfg.Origins = slices.Clone(cfg.Origins)
	return &Factor{cfg: cfg}, nil
}

// roots are the extra trusted roots now.
func (f *Factor) roots() []*x509.Certificate {
	if f.cfg.RootsFunc != nil {
		return f.cfg.RootsFunc()
	}
	return f.cfg.Roots
}

// Describe says what the kind needs.
func (f *Factor) Describe(context.Context) (sdk.Info, error) {
	return sdk.Info{
		Kind: Kind, DisplayName: "Security key (FIDO2 / WebAuthn)", Version: "1", Hardware: true,
		EnrolInputs: []sdk.Input{
			{Name: "id", Description: "credential id (base64url)"},
			{Name: "rawId", Description: "credential id (base64url)"},
			{Name: "type", Description: `"public-key"`},
			{Name: "response", Description: "attestationObject and clientDataJSON (base64url), as navigator.credentials.create() returns them"},
			{Name: "handover", Description: "true when the key's PIN is a printed hand-over PIN: the factor stays pending"},
		},
		VerifyInputs: []sdk.Input{
			{Name: "id", Description: "credential id (base64url)"},
			{Name: "rawId", Description: "credential id (base64url)"},
			{Name: "type", Description: `"public-key"`},
			{Name: "response", Description: "authenticatorData, clientDataJSON, signature (base64url), as navigator.credentials.get() returns them"},
		},
	}, nil
}

func (f *Factor) now(t time.Time) time.Time {
	if t.IsZero() {
		return f.cfg.Now()
	}
	return t
}

func (f *Factor) timeoutMS() int { return int(f.cfg.Timeout / time.Millisecond) }

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", sdk.ErrInvalidRequest, fmt.Sprintf(format, args...))
}

func rejected(format string, args ...any) error {
	return fmt.Errorf("%w: %w: %s", sdk.ErrInvalidRequest, ErrRejected, fmt.Sprintf(format, args...))
}

// credentialParams are the algorithms offered, in order of preference.
var credentialParams = []api.FIDO2CredParam{{Type: "public-key", Alg: -7}, {Type: "public-key", Alg: -8}, {Type: "public-key", Alg: -257}}
