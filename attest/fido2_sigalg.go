package attest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	_ "crypto/sha1" // RS1: Windows TPMs sign certInfo with RSASSA-PKCS1-v1_5 and SHA-1
	_ "crypto/sha256"
	_ "crypto/sha512"
	"errors"
)

// sigAlg is a COSE signature algorithm (RFC 9053 §2, RFC 8812 §2) as
// attestation statements name it.
type sigAlg struct {
	hash crypto.Hash
	kind int
}

const (
	sigRSAPKCS1 = iota + 1
	sigRSAPSS
	sigECDSA
)

// coseSigAlgs are the algorithms attestation statements use. RS1 (-65535)
// is listed because WebAuthn §8.3 TPMs use it; it is accepted only for
// statement signatures, never for certificates.
var coseSigAlgs = map[int64]sigAlg{
	-7: {crypto.SHA256, sigECDSA}, -35: {crypto.SHA384, sigECDSA}, -36: {crypto.SHA512, sigECDSA},
	-257: {crypto.SHA256, sigRSAPKCS1}, -258: {crypto.SHA384, sigRSAPKCS1}, -259: {crypto.SHA512, sigRSAPKCS1},
	-65535: {crypto.SHA1, sigRSAPKCS1},
	-37:    {crypto.SHA256, sigRSAPSS}, -38: {crypto.SHA384, sigRSAPSS}, -39: {crypto.SHA512, sigRSAPSS},
}

func coseSigAlg(alg int64) (sigAlg, error) {
	a, ok := coseSigAlgs[alg]
	if !ok {
		return sigAlg{}, fail(ErrInvalidAttestation, nil, "the attestation statement uses unsupported signature algorithm %d", alg)
	}
	return a, nil
}

// verify checks sig over msg with pub.
func (a sigAlg) verify(pub crypto.PublicKey, msg, sig []byte) error {
	h := digest(a.hash, msg)
	switch k := pub.(type) {
	case *rsa.PublicKey:
		switch a.kind {
		case sigRSAPKCS1:
			return rsa.VerifyPKCS1v15(k, a.hash, h, sig)
		case sigRSAPSS:
			return rsa.VerifyPSS(k, a.hash, h, sig, nil)
		}
	case *ecdsa.PublicKey:
		if a.kind == sigECDSA {
			if ecdsa.VerifyASN1(k, h, sig) {
				return nil
			}
			return errors.New("ECDSA signature does not verify")
		}
	}
	return errors.New("the key type does not match the signature algorithm")
}

// digest hashes b with h.
func digest(h crypto.Hash, b []byte) []byte {
	w := h.New()
	w.Write(b)
	return w.Sum(nil)
}
