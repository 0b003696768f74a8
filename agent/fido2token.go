package agent

import "errors"

// FIDO2 errors the tokens and workflows return, besides *WrongPINError and
// ErrPINBlocked.
var (
	// ErrNoFIDO2Key: no FIDO2 key is connected.
	ErrNoFIDO2Key = errors.New("no FIDO2 security key found: insert one")
	// ErrTouchTimeout: the key waited for a touch that did not come.
	ErrTouchTimeout = errors.New("the key was not touched in time: run the command again and touch the key when it blinks")
	// ErrTouchDenied: the user declined on the key (or a bio key did not
	// recognise the finger).
	ErrTouchDenied = errors.New("the request was declined on the key")
	// ErrKeyRemoved: the key went away during the operation.
	ErrKeyRemoved = errors.New("the key was removed during the operation: insert it again and start over")
	// ErrFIDO2PINRequired: the key has a PIN and none was given.
	ErrFIDO2PINRequired = errors.New("the key already has a FIDO2 PIN: give it (or reset the key's FIDO2 application with ykman fido reset)")
	// ErrPINAuthBlocked: three wrong PINs in a row; the key takes no PIN
	// until it is unplugged and plugged in again (the retries left are
	// kept: this is not ErrPINBlocked).
	ErrPINAuthBlocked = errors.New("three wrong FIDO2 PINs in a row: remove the key, insert it again, then give the right PIN")
	// ErrPINPolicy: the key refuses the new PIN (too short, too simple).
	ErrPINPolicy = errors.New("the key refuses this PIN: choose a longer one (at least 4, with the policy's minimum)")
	// ErrNoCredential: the key holds none of the credentials asked for.
	ErrNoCredential = errors.New("this key holds none of the credentials the daemon asked for: insert the key that was enrolled")
	// ErrCredentialExcluded: the key already holds a credential of this
	// user for this relying party.
	ErrCredentialExcluded = errors.New("this key is already registered for this user")
	// ErrResetWindow: the key refused a FIDO2 reset because it was not
	// plugged in just before (a YubiKey takes one only within 5 s of being
	// plugged in; CTAP 2.1 §6.6 allows up to 10 s).
	ErrResetWindow = errors.New("the key refused the FIDO2 reset: a YubiKey takes one only in the first seconds after it is plugged in")
)

// FIDO2Info describes one FIDO2 key.
type FIDO2Info struct {
	Path     string `json:"path"`
	Product  string `json:"product,omitempty"`
	AAGUID   []byte `json:"aaguid"`
	Versions []string
	// PINSet reports whether the key has a FIDO2 PIN (clientPin option).
	PINSet bool `json:"pin_set"`
	// Enterprise reports whether the key may give enterprise attestation
	// (the ep option, YubiKey 5.7+ configured for it).
	Enterprise bool `json:"enterprise"`
}

// MakeCredentialRequest is an authenticatorMakeCredential (CTAP 2.1 §6.1).
// The PIN goes in as an argument and never comes back in errors.
type MakeCredentialRequest struct {
	ClientDataHash []byte
	RPID, RPName   string
	UserID         []byte
	UserName       string
	DisplayName    string
	// Algorithms are COSE ids, in order of preference.
	Algorithms []int
	// Exclude are credential ids the key must not already hold.
	Exclude     [][]byte
	ResidentKey bool
	UV          bool
	// Enterprise asks for enterprise attestation (vendor-facilitated).
	Enterprise bool
	PIN        string
}

// Attestation is a new credential with its attestation object (CBOR
// {fmt, authData, attStmt}, WebAuthn §6.5.4).
type Attestation struct {
	CredentialID      []byte
	AttestationObject []byte
}

// GetAssertionRequest is an authenticatorGetAssertion (CTAP 2.1 §6.2).
type GetAssertionRequest struct {
	RPID           string
	ClientDataHash []byte
	Allow          [][]byte
	UV             bool
	PIN            string
}

// Assertion is a key's answer to a GetAssertionRequest.
type Assertion struct {
	CredentialID, AuthData, Signature, UserHandle []byte
}

// FIDO2Token is one open FIDO2 key. Secrets go in as arguments and are
// never returned in errors.
type FIDO2Token interface {
	Info() (FIDO2Info, error)
	// SetPIN sets the first PIN of a key that has none.
	SetPIN(pin string) error
	// ChangePIN replaces the PIN; a wrong old PIN is a *WrongPINError.
	ChangePIN(oldPIN, newPIN string) error
	// PINRetries says how many wrong PINs are left.
	PINRetries() (int, error)
	// MakeCredential waits for a touch.
	MakeCredential(req MakeCredentialRequest) (Attestation, error)
	// GetAssertion waits for a touch.
	GetAssertion(req GetAssertionRequest) (Assertion, error)
	// Reset is authenticatorReset (CTAP 2.1 §6.6): after a touch the key
	// forgets every credential and its PIN. A key plugged in more than a
	// few seconds before refuses it with ErrResetWindow.
	Reset() error
	Close() error
}

// FIDO2Opener finds and opens FIDO2 keys.
type FIDO2Opener interface {
	// Devices lists the connected FIDO2 keys' paths.
	Devices() ([]string, error)
	Open(path string) (FIDO2Token, error)
}
