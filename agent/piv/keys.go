package piv

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"

	"github.com/go-piv/piv-go/v2/piv"

	"github.com/keyfleet/keyfleet/agent"
)

var (
	slots = map[string]piv.Slot{"9a": piv.SlotAuthentication, "9c": piv.SlotSignature,
		"9d": piv.SlotKeyManagement, "9e": piv.SlotCardAuthentication}
	algorithms = map[string]piv.Algorithm{"EC-P256": piv.AlgorithmEC256, "EC-P384": piv.AlgorithmEC384, "RSA-2048": piv.AlgorithmRSA2048}
	pinPols    = map[string]piv.PINPolicy{"never": piv.PINPolicyNever, "once": piv.PINPolicyOnce, "always": piv.PINPolicyAlways}
	touchPols  = map[string]piv.TouchPolicy{"never": piv.TouchPolicyNever, "cached": piv.TouchPolicyCached, "always": piv.TouchPolicyAlways}
)

func slotFor(name string) (piv.Slot, error) {
	s, ok := slots[name]
	if !ok {
		return piv.Slot{}, fmt.Errorf("unknown PIV slot %q", name)
	}
	return s, nil
}

// GenerateKey generates a key in the slot with the spec's policies.
func (t *Token) GenerateKey(mgmtKey []byte, spec agent.KeySpec) (crypto.PublicKey, error) {
	slot, err := slotFor(spec.Slot)
	if err != nil {
		return nil, err
	}
	alg, okA := algorithms[spec.Algorithm]
	pp, okP := pinPols[spec.PINPolicy]
	tp, okT := touchPols[spec.TouchPolicy]
	if !okA || !okP || !okT {
		return nil, fmt.Errorf("unsupported key spec %s, PIN %s, touch %s", spec.Algorithm, spec.PINPolicy, spec.TouchPolicy)
	}
	pub, err := t.yk.GenerateKey(mgmtKey, slot, piv.Key{Algorithm: alg, PINPolicy: pp, TouchPolicy: tp})
	return pub, mapErr(err)
}

// Attest returns the slot and F9 certificates.
func (t *Token) Attest(name string) (*x509.Certificate, *x509.Certificate, error) {
	slot, err := slotFor(name)
	if err != nil {
		return nil, nil, err
	}
	sc, err := t.yk.Attest(slot)
	if err != nil {
		return nil, nil, mapErr(err)
	}
	dc, err := t.yk.AttestationCertificate()
	return sc, dc, mapErr(err)
}

// SignDigest signs a SHA-256 digest with the slot key.
func (t *Token) SignDigest(name string, pub crypto.PublicKey, pin string, digest []byte) ([]byte, error) {
	slot, err := slotFor(name)
	if err != nil {
		return nil, err
	}
	priv, err := t.yk.PrivateKey(slot, pub, piv.KeyAuth{PIN: pin})
	if err != nil {
		return nil, mapErr(err)
	}
	signer, ok := priv.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("the key in slot %s cannot sign", name)
	}
	sig, err := signer.Sign(rand.Reader, digest, crypto.SHA256)
	return sig, mapErr(err)
}

// PublicKey reads the slot's public key from its metadata (INS F7).
// Hardware quirk: firmware before 5.3 has no metadata command; those keys
// answer "not found" and cannot be verified without the certificate.
func (t *Token) PublicKey(name string) (crypto.PublicKey, error) {
	slot, err := slotFor(name)
	if err != nil {
		return nil, err
	}
	ki, err := t.yk.KeyInfo(slot)
	if err != nil {
		return nil, fmt.Errorf("reading the key in slot %s (firmware 5.3 or later is needed): %w", name, mapErr(err))
	}
	return ki.PublicKey, nil
}

// mapErr turns piv-go's PIN errors into the agent's.
func mapErr(err error) error {
	var ae piv.AuthErr
	if errors.As(err, &ae) {
		if ae.Retries == 0 {
			return agent.ErrPINBlocked
		}
		return &agent.WrongPINError{Retries: ae.Retries}
	}
	return err
}

// DeviceCertificate reads the F9 device attestation certificate. It reads
// only: the enrolment pre-flight sends it before anything changes.
func (t *Token) DeviceCertificate() (*x509.Certificate, error) {
	dc, err := t.yk.AttestationCertificate()
	return dc, mapErr(err)
}
