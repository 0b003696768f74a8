package agent

import (
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
)

// Errors the workflows return. Callers branch with errors.Is / errors.As.
var (
	// ErrNoKey: no key is connected.
	ErrNoKey = errors.New("no YubiKey found: insert one")
	// ErrPINBlocked: the PIN is blocked; the PUK unblocks it.
	ErrPINBlocked = errors.New("the PIN is blocked: unblock it with the PUK, or reset the key (--reset)")
	// ErrNotFactoryFresh: the key has a non-default PIN or management key
	// and --reset was not given.
	ErrNotFactoryFresh = errors.New("the key is already provisioned (non-default PIN or management key): pass --reset to wipe its PIV applet")
)

// WrongPINError says a PIN or PUK was wrong; Retries are left.
type WrongPINError struct {
	Retries int
}

func (e *WrongPINError) Error() string {
	return fmt.Sprintf("wrong PIN: %d tries left before it blocks", e.Retries)
}

// DeviceInfo describes one connected key.
type DeviceInfo struct {
	Reader     string `json:"reader"`
	Serial     uint32 `json:"serial"`
	Firmware   string `json:"firmware"`
	FormFactor string `json:"form_factor,omitempty"`
	// FormFactorCode is the management application's form factor byte
	// (0x80 set for FIPS; 0 when the key has no management application).
	FormFactorCode uint8    `json:"-"`
	Applets        []string `json:"applets"`
}

// KeySpec is a key to generate: Algorithm "EC-P256", "EC-P384" or
// "RSA-2048"; policies as in attestation ("once", "always", "cached").
type KeySpec struct {
	Slot, Algorithm, PINPolicy, TouchPolicy string
}

// PIVToken is one open YubiKey's PIV applet. Secrets go in as arguments
// and are never returned in errors.
type PIVToken interface {
	Info() (DeviceInfo, error)
	// Reset blocks the PIN and PUK and resets the PIV applet.
	Reset() error
	// IsFactoryFresh reports whether the PIN and management key are the
	// factory defaults.
	IsFactoryFresh() (bool, error)
	// SetManagementKey changes the management key from the default.
	SetManagementKey(newKey []byte) error
	// StoreManagementKey keeps the key on the token, PIN-protected.
	StoreManagementKey(key []byte) error
	SetPIN(oldPIN, newPIN string) error
	SetPUK(oldPUK, newPUK string) error
	GenerateKey(mgmtKey []byte, spec KeySpec) (crypto.PublicKey, error)
	// Attest returns the slot attestation certificate and the F9 device
	// certificate.
	Attest(slot string) (slotCert, deviceCert *x509.Certificate, err error)
	// SignDigest signs a SHA-256 digest with the slot key (the PIN is
	// given when the policy needs it); touch may be awaited.
	SignDigest(slot string, pub crypto.PublicKey, pin string, digest []byte) ([]byte, error)
	// PublicKey reads the slot's public key (metadata, firmware 5.3+).
	PublicKey(slot string) (crypto.PublicKey, error)
	// DeviceCertificate reads the F9 device attestation certificate
	// without changing anything (nil when the key has none).
	DeviceCertificate() (*x509.Certificate, error)
	Close() error
}

// PIVOpener finds and opens keys.
type PIVOpener interface {
	// Readers lists the PC/SC readers that hold a YubiKey.
	Readers() ([]string, error)
	Open(reader string) (PIVToken, error)
}
