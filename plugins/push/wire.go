package push

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math/big"
	"strconv"
	"strings"
	"time"
)

// Kind is the factor kind's name.
const Kind = "push"

// Decisions a device can sign.
const (
	Approve = "approve" // the user picked a number (or approved, without number matching)
	Deny    = "deny"    // the user refused
	Report  = "report"  // "this wasn't me": the user did not start this sign-in
)

// EnrolResponse is what a companion sends to complete a push enrolment.
type EnrolResponse struct {
	// PublicKey is the device key's public half: base64url of the
	// uncompressed P-256 point.
	PublicKey string `json:"public_key"`
	// DeviceName names the companion for the user ("Firefox on work
	// laptop"), 1 to 64 characters.
	DeviceName string `json:"device_name"`
	// KeyProtection says how the companion keeps the private key
	// ("non-extractable" for a WebCrypto key, "file" for a key file);
	// shown, not trusted.
	KeyProtection string `json:"key_protection,omitempty"`
	// Signature is the device key's signature over EnrolMessage.
	Signature string `json:"signature"`
}

// EnrolMessage is what a companion signs to confirm an enrolment: the
// enrolment, the nonce from its Params, and the key and name it registers.
func EnrolMessage(enrolmentID, nonce, publicKey, deviceName string) []byte {
	return []byte("keyfleet-push-enrol/v1\n" + enrolmentID + "\n" + nonce + "\n" + publicKey + "\n" + deviceName)
}

// Public is a push factor's public material (api.Factor.Public). Its
// values are strings so that the policy reads them as parameters.
type Public struct {
	PublicKey      string `json:"public_key"`
	DeviceName     string `json:"device_name"`
	NumberMatching string `json:"number_matching"` // "true" or "false"
	Timeout        string `json:"timeout"`         // seconds to answer
	KeyProtection  string `json:"key_protection,omitempty"`
}

// Prompt is what the application that began a verification shows the
// user: the number to pick on the device.
type Prompt struct {
	Number   string    `json:"number,omitempty"` // empty without number matching
	Device   string    `json:"device"`
	Deadline time.Time `json:"deadline"`
	Message  string    `json:"message"`
}

// Delivery is what the device receives: the context to show and the
// numbers to choose from. It carries nothing that lets its reader answer.
type Delivery struct {
	VerificationID string    `json:"verification_id"`
	FactorID       string    `json:"factor_id"`
	User           string    `json:"user"`
	DisplayName    string    `json:"display_name,omitempty"`
	Application    string    `json:"application,omitempty"`
	Address        string    `json:"address,omitempty"`
	Time           time.Time `json:"time"`
	Deadline       time.Time `json:"deadline"`
	// Choices are three two-digit numbers, one of them the right one,
	// in random order; nil without number matching.
	Choices []string `json:"choices,omitempty"`
}

// Answer is a device's signed answer to a push.
type Answer struct {
	VerificationID string `json:"verification_id"`
	FactorID       string `json:"factor_id"`
	Number         string `json:"number,omitempty"`
	Decision       string `json:"decision"`
	// Time is the device's clock when it answered, in Unix milliseconds.
	Time      int64  `json:"time"`
	Signature string `json:"signature"`
}

// Message is what the device signs for a.
func (a Answer) Message() []byte {
	return []byte("keyfleet-push-answer/v1\n" + a.VerificationID + "\n" + a.FactorID + "\n" + a.Number + "\n" +
		a.Decision + "\n" + strconv.FormatInt(a.Time, 10))
}

// DeviceHeader is the request header a companion authenticates its
// channel requests with: "factor=<id>, time=<unix ms>, signature=<b64url>",
// the signature over DeviceMessage.
const DeviceHeader = "Keyfleet-Device"

// DeviceMessage is what a companion signs to authenticate one request.
func DeviceMessage(method, path, factorID string, unixMilli int64) []byte {
	return []byte("keyfleet-push-device/v1\n" + method + "\n" + path + "\n" + factorID + "\n" + strconv.FormatInt(unixMilli, 10))
}

// FormatDeviceHeader writes the DeviceHeader value.
func FormatDeviceHeader(factorID string, unixMilli int64, sig []byte) string {
	return fmt.Sprintf("factor=%s, time=%d, signature=%s", factorID, unixMilli, base64.RawURLEncoding.EncodeToString(sig))
}

// ErrMalformed: a header, key or signature does not parse.
var ErrMalformed = errors.New("malformed")

// ParseDeviceHeader reads a DeviceHeader value. Errors wrap ErrMalformed.
func ParseDeviceHeader(h string) (factorID string, unixMilli int64, sig []byte, err error) {
	fields := map[string]string{}
	for _, part := range strings.Split(h, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || fields[k] != "" {
			return "", 0, nil, fmt.Errorf("%w: %s header: want factor=…, time=…, signature=…", ErrMalformed, DeviceHeader)
		}
		fields[k] = v
	}
	t, terr := strconv.ParseInt(fields["time"], 10, 64)
	sig, serr := base64.RawURLEncoding.DecodeString(fields["signature"])
	if fields["factor"] == "" || len(fields) != 3 || terr != nil || serr != nil {
		return "", 0, nil, fmt.Errorf("%w: %s header: want factor=…, time=<unix ms>, signature=<base64url>", ErrMalformed, DeviceHeader)
	}
	return fields["factor"], t, sig, nil
}

// ParsePublicKey reads a base64url uncompressed P-256 point. Errors wrap
// ErrMalformed.
func ParsePublicKey(s string) (*ecdsa.PublicKey, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%w: public key is not base64url", ErrMalformed)
	}
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), b)
	if err != nil {
		return nil, fmt.Errorf("%w: public key is not an uncompressed P-256 point: %v", ErrMalformed, err)
	}
	return pub, nil
}

// EncodePublicKey is ParsePublicKey's inverse.
func EncodePublicKey(pub *ecdsa.PublicKey) (string, error) {
	b, err := pub.Bytes()
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// Verify reports whether sig (r‖s, 64 bytes) is pub's ECDSA signature
// over SHA-256(msg).
func Verify(pub *ecdsa.PublicKey, msg, sig []byte) bool {
	if pub == nil || len(sig) != 64 {
		return false
	}
	h := sha256.Sum256(msg)
	r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
	return ecdsa.Verify(pub, h[:], r, s)
}

// VerifyB64 is Verify with a base64url signature.
func VerifyB64(pub *ecdsa.PublicKey, msg []byte, sig string) bool {
	b, err := base64.RawURLEncoding.DecodeString(sig)
	return err == nil && Verify(pub, msg, b)
}

// Sign signs SHA-256(msg) with priv and returns r‖s (64 bytes), as a
// WebCrypto companion does. rand nil means crypto/rand.
func Sign(rand io.Reader, priv *ecdsa.PrivateKey, msg []byte) ([]byte, error) {
	h := sha256.Sum256(msg)
	if rand == nil {
		rand = cryptoRand
	}
	r, s, err := ecdsa.Sign(rand, priv, h[:])
	if err != nil {
		return nil, err
	}
	out := make([]byte, 64)
	r.FillBytes(out[:32])
	s.FillBytes(out[32:])
	return out, nil
}
