package push

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"encoding/base64"
	"fmt"
	"io"
	"sync"
	"time"
)

// Device is a companion's side of a push factor: the device key and the
// factor it answers for. Companions written in Go (keyfleet-agent push,
// tests, benchmarks) use it; the web companion does the same in
// WebCrypto.
type Device struct {
	Key      *ecdsa.PrivateKey
	FactorID string // set once the enrolment completes
	// Rand is the source of signature randomness; nil means crypto/rand.
	Rand io.Reader

	mu       sync.Mutex
	lastAuth int64 // the last request's signed time, Unix milliseconds
}

// NewDevice makes a device with a fresh P-256 key.
func NewDevice(rand io.Reader) (*Device, error) {
	if rand == nil {
		rand = cryptoRand
	}
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand)
	if err != nil {
		return nil, fmt.Errorf("push: making a device key: %w", err)
	}
	return &Device{Key: k, Rand: rand}, nil
}

// PublicKey is the device key's public half as enrolment sends it.
func (d *Device) PublicKey() string {
	s, _ := EncodePublicKey(&d.Key.PublicKey)
	return s
}

func (d *Device) sign(msg []byte) (string, error) {
	sig, err := Sign(d.Rand, d.Key, msg)
	if err != nil {
		return "", fmt.Errorf("push: signing: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(sig), nil
}

// Enrol answers an enrolment: nonce is its Params["nonce"].
func (d *Device) Enrol(enrolmentID, nonce, name, protection string) (EnrolResponse, error) {
	r := EnrolResponse{PublicKey: d.PublicKey(), DeviceName: name, KeyProtection: protection}
	var err error
	r.Signature, err = d.sign(EnrolMessage(enrolmentID, nonce, r.PublicKey, name))
	return r, err
}

// Answer signs a decision on a delivered push at now; number is the
// choice picked (empty without number matching, or to deny or report).
func (d *Device) Answer(del Delivery, number, decision string, now time.Time) (Answer, error) {
	a := Answer{VerificationID: del.VerificationID, FactorID: del.FactorID, Number: number, Decision: decision, Time: now.UnixMilli()}
	var err error
	a.Signature, err = d.sign(a.Message())
	return a, err
}

// Authorization is the DeviceHeader value for one request at now. Each
// header carries a later time than the one before (keyfleetd refuses a
// signed time it has seen), so two requests in one millisecond differ.
func (d *Device) Authorization(method, path string, now time.Time) (string, error) {
	d.mu.Lock()
	t := max(now.UnixMilli(), d.lastAuth+1)
	d.lastAuth = t
	d.mu.Unlock()
	sig, err := Sign(d.Rand, d.Key, DeviceMessage(method, path, d.FactorID, t))
	if err != nil {
		return "", fmt.Errorf("push: signing: %w", err)
	}
	return FormatDeviceHeader(d.FactorID, t, sig), nil
}
