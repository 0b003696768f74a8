package attest

import (
	"errors"
	"fmt"
)

// Sentinel errors. Every error returned by this package wraps exactly one of
// them (inside an [*Error]), so callers can branch with errors.Is.
var (
	// ErrMalformed: the input could not be parsed (bad PEM/DER/CBOR/JSON,
	// truncated data, an extension of the wrong size).
	ErrMalformed = errors.New("malformed attestation")
	// ErrMissingExtension: a certificate lacks an extension the attestation
	// format requires (for example the PIV PIN/touch policy).
	ErrMissingExtension = errors.New("missing attestation extension")
	// ErrUntrustedChain: the certificates do not chain to a trusted root.
	ErrUntrustedChain = errors.New("untrusted attestation chain")
	// ErrDeviceMismatch: the PIV slot certificate was not signed by the F9
	// device certificate given with it (the two come from different keys).
	ErrDeviceMismatch = errors.New("slot and device certificates do not match")
	// ErrExpired: a certificate of the chain is expired or not yet valid at
	// the verification time, or a signed timestamp in the statement (the
	// SafetyNet response's timestampMs) is too far from it.
	ErrExpired = errors.New("certificate outside its validity period")
	// ErrKeyMismatch: the attested key is not the key the caller expected
	// (or not the key of the CSR).
	ErrKeyMismatch = errors.New("attested key does not match")
	// ErrInvalidAttestation: the attestation statement fails its format's
	// checks (bad signature, wrong certificate fields, failed integrity
	// verdict).
	ErrInvalidAttestation = errors.New("invalid attestation statement")
	// ErrUnsupportedKey: the credential's public key is well formed but of
	// a key type, curve or algorithm this package cannot use (an ML-DSA
	// key of COSE key type AKP, an EC key on secp256k1): the key is not
	// broken, keyfleet cannot check signatures made with it.
	ErrUnsupportedKey = errors.New("unsupported key type")
	// ErrUnsupportedFormat: the attestation format is not one this package
	// verifies.
	ErrUnsupportedFormat = errors.New("unsupported attestation format")
	// ErrChallengeMismatch: the client data carries another challenge than
	// the one issued.
	ErrChallengeMismatch = errors.New("challenge mismatch")
	// ErrOriginMismatch: the client data names an origin the caller does not
	// accept.
	ErrOriginMismatch = errors.New("origin mismatch")
	// ErrRPIDMismatch: the authenticator data was made for another relying
	// party ID.
	ErrRPIDMismatch = errors.New("relying party ID mismatch")
	// ErrClientData: the client data is not that of a registration
	// (wrong type, cross-origin, bad token binding status) or the
	// authenticator flags are wrong (user not present).
	ErrClientData = errors.New("invalid client data")
	// ErrRevoked: the FIDO Metadata Service reports the authenticator as
	// revoked or compromised.
	ErrRevoked = errors.New("authenticator revoked")
	// ErrInvalidOptions: the caller's options are unusable (for example no
	// verification time).
	ErrInvalidOptions = errors.New("invalid verification options")
)

// Error carries the detail of a failed verification. It unwraps to its
// Reason (one of the sentinel errors above) and to the underlying cause, if
// any, so both errors.Is(err, ErrExpired) and errors.As(err, &x509Err) work.
type Error struct {
	// Reason is one of this package's sentinel errors.
	Reason error
	// Detail says what went wrong, in words an IT person understands.
	Detail string
	// Err is the underlying error from a parser or crypto/x509, or nil.
	Err error
}

// Error returns the reason, the detail and the cause, in that order.
func (e *Error) Error() string {
	msg := e.Reason.Error() + ": " + e.Detail
	if e.Err != nil {
		msg += " (" + e.Err.Error() + ")"
	}
	return msg
}

// Unwrap returns the reason and, when set, the cause.
func (e *Error) Unwrap() []error {
	if e.Err == nil {
		return []error{e.Reason}
	}
	return []error{e.Reason, e.Err}
}

// fail builds an *Error with a formatted detail.
func fail(reason error, cause error, format string, args ...any) *Error {
	return &Error{Reason: reason, Detail: fmt.Sprintf(format, args...), Err: cause}
}
