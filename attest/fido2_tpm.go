package attest

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/binary"
	"math/big"
	"slices"

	"github.com/go-webauthn/webauthn/protocol"
)

// TPM 2.0 constants (TPM 2.0 Library, Part 2: Structures).
const (
	tpmGeneratedValue   = 0xff544347 // TPM_GENERATED_VALUE (§6.2)
	tpmSTAttestCertify  = 0x8017     // TPM_ST_ATTEST_CERTIFY (§6.9)
	tpmAlgRSA           = 0x0001     // TPM_ALG_RSA (§6.3)
	tpmAlgECC           = 0x0023     // TPM_ALG_ECC
	tpmAlgNull          = 0x0010     // TPM_ALG_NULL
	tpmAlgSHA1          = 0x0004     // TPM_ALG_SHA1
	tpmAlgSHA256        = 0x000b     // TPM_ALG_SHA256
	tpmAlgSHA384        = 0x000c     // TPM_ALG_SHA384
	tpmAlgSHA512        = 0x000d     // TPM_ALG_SHA512
	tpmRSADefaultExpont = 65537      // an exponent of 0 in TPMS_RSA_PARMS means 2^16+1 (§12.2.3.5)
)

// tpmCurves maps TPM_ECC_CURVE (§6.4) to Go curves.
var tpmCurves = map[uint16]elliptic.Curve{0x0003: elliptic.P256(), 0x0004: elliptic.P384(), 0x0005: elliptic.P521()}

// tpmHashes maps a TPM_ALG_ID hash to Go.
var tpmHashes = map[uint16]crypto.Hash{tpmAlgSHA1: crypto.SHA1, tpmAlgSHA256: crypto.SHA256, tpmAlgSHA384: crypto.SHA384, tpmAlgSHA512: crypto.SHA512}

// AIK certificate OIDs (WebAuthn §8.3.1; TCG EK Credential Profile §3.2.9).
var (
	oidTCGKPAIKCertificate = asn1.ObjectIdentifier{2, 23, 133, 8, 3}
	oidTCGManufacturer     = asn1.ObjectIdentifier{2, 23, 133, 2, 1}
	oidTCGModel            = asn1.ObjectIdentifier{2, 23, 133, 2, 2}
	oidTCGVersion          = asn1.ObjectIdentifier{2, 23, 133, 2, 3}
)

// verifyTPM implements the tpm verification procedure (WebAuthn §8.3.2).
// The AIK certificate's validity is checked with the rest of the chain, at
// the caller's verification time, by verifyFIDOChain.
func verifyTPM(att *protocol.AttestationObject, clientDataHash []byte, key *credentialKey) (string, []*x509.Certificate, error) {
	st := att.AttStatement
	ver, _ := st["ver"].(string)
	alg, okAlg := st["alg"].(int64)
	sig, okSig := st["sig"].([]byte)
	certInfo, okInfo := st["certInfo"].([]byte)
	pubArea, okPub := st["pubArea"].([]byte)
	if !okAlg || !okSig || !okInfo || !okPub {
		return "", nil, fail(ErrMalformed, nil, "the tpm statement lacks its alg, sig, certInfo or pubArea")
	}
	if ver != "2.0" {
		return "", nil, fail(ErrInvalidAttestation, nil, "the tpm statement is for TPM version %q; only 2.0 is defined", ver)
	}
	if _, ok := st["ecdaaKeyId"]; ok {
		return "", nil, fail(ErrUnsupportedFormat, nil, "ECDAA tpm attestation was removed from WebAuthn and is not supported")
	}
	certs, err := parseX5C(st["x5c"], false)
	if err != nil {
		return "", nil, err
	}
	sa, err := coseSigAlg(alg)
	if err != nil {
		return "", nil, err
	}
	pub, err := parseTPMPublic(pubArea)
	if err != nil {
		return "", nil, err
	}
	if !pub.matches(key.pub) {
		return "", nil, fail(ErrInvalidAttestation, nil, "the TPM public area describes another key than the credential key")
	}
	info, err := parseTPMCertifyInfo(certInfo)
	if err != nil {
		return "", nil, err
	}
	toBeSigned := append(append([]byte{}, att.RawAuthData...), clientDataHash...)
	if !bytes.Equal(info.extraData, digest(sa.hash, toBeSigned)) {
		return "", nil, fail(ErrInvalidAttestation, nil, "the TPM certInfo certifies other data than this registration (extraData is not the %s hash of authenticator data and client data hash)", sa.hash)
	}
	if !bytes.Equal(info.name, pub.name) {
		return "", nil, fail(ErrInvalidAttestation, nil, "the TPM certInfo certifies another object than the public area given (name mismatch)")
	}
	if err := sa.verify(certs[0].PublicKey, certInfo, sig); err != nil {
		return "", nil, fail(ErrInvalidAttestation, err, "the TPM signature over certInfo does not verify with the AIK certificate")
	}
	if err := checkAIKCert(certs[0], att.AuthData.AttData.AAGUID); err != nil {
		return "", nil, err
	}
	return AttestationCA, certs, nil
}

// tpmPublic is the part of TPMT_PUBLIC (Part 2 §12.2.4) WebAuthn needs.
type tpmPublic struct {
	typ   uint16
	rsa   *rsa.PublicKey
	curve elliptic.Curve
	x, y  []byte
	name  []byte // TPM2B_NAME content: nameAlg || H_nameAlg(pubArea)
}

// parseTPMPublic decodes an untrusted TPMT_PUBLIC of an RSA or ECC key.
func parseTPMPublic(raw []byte) (*tpmPublic, error) {
	r := &tpmReader{b: raw}
	p := &tpmPublic{typ: r.u16()}
	nameAlg := r.u16()
	r.skip(4)  // objectAttributes
	r.tpm2b()  // authPolicy
	r.symDef() // parameters.symmetric
	r.scheme() // parameters.scheme
	switch p.typ {
	case tpmAlgRSA:
		bits, exp := r.u16(), r.u32()
		n := r.tpm2b()
		if exp == 0 {
			exp = tpmRSADefaultExpont
		}
		if len(n)*8 != int(bits) || exp > 1<<31-1 {
			r.bad = true
		}
		p.rsa = &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(exp)}
	case tpmAlgECC:
		curve := r.u16()
		r.scheme() // kdf
		p.x, p.y = r.tpm2b(), r.tpm2b()
		p.curve = tpmCurves[curve]
		if p.curve == nil {
			return nil, fail(ErrInvalidAttestation, nil, "the TPM public area uses an unsupported curve 0x%04x", curve)
		}
	default:
		return nil, fail(ErrInvalidAttestation, nil, "the TPM public area is of type 0x%04x, neither RSA nor ECC", p.typ)
	}
	if r.bad || len(r.b) != 0 {
		return nil, fail(ErrMalformed, nil, "the TPM public area (pubArea) is truncated or has trailing bytes")
	}
	h, ok := tpmHashes[nameAlg]
	if !ok {
		return nil, fail(ErrInvalidAttestation, nil, "the TPM public area names its object with unsupported hash 0x%04x", nameAlg)
	}
	p.name = binary.BigEndian.AppendUint16(nil, nameAlg)
	p.name = append(p.name, digest(h, raw)...)
	return p, nil
}

// matches reports whether the public area holds the credential key
// (WebAuthn §8.3.2: "parameters and unique fields of pubArea").
func (p *tpmPublic) matches(cred crypto.PublicKey) bool {
	switch k := cred.(type) {
	case *rsa.PublicKey:
		return p.rsa != nil && p.rsa.N.Cmp(k.N) == 0 && p.rsa.E == k.E
	case *ecdsa.PublicKey:
		size := (k.Curve.Params().BitSize + 7) / 8
		return p.curve == k.Curve &&
			bytes.Equal(leftPad(p.x, size), k.X.FillBytes(make([]byte, size))) &&
			bytes.Equal(leftPad(p.y, size), k.Y.FillBytes(make([]byte, size)))
	}
	return false
}

func leftPad(b []byte, n int) []byte {
	if len(b) >= n {
		return b
	}
	return append(make([]byte, n-len(b)), b...)
}

// tpmCertifyInfo is the part of TPMS_ATTEST (Part 2 §10.12.12) with a
// TPMS_CERTIFY_INFO (§10.12.3) that WebAuthn checks. clockInfo,
// firmwareVersion and qualifiedSigner are read past and ignored, as §8.3.2
// allows.
type tpmCertifyInfo struct {
	extraData []byte
	name      []byte
}

// parseTPMCertifyInfo decodes an untrusted TPMS_ATTEST and checks its magic
// and type.
func parseTPMCertifyInfo(raw []byte) (*tpmCertifyInfo, error) {
	r := &tpmReader{b: raw}
	magic, typ := r.u32(), r.u16()
	r.tpm2b() // qualifiedSigner
	info := &tpmCertifyInfo{extraData: r.tpm2b()}
	r.skip(17 + 8) // clockInfo (clock, resetCount, restartCount, safe), firmwareVersion
	info.name = r.tpm2b()
	r.tpm2b() // qualifiedName
	switch {
	case r.bad || len(r.b) != 0:
		return nil, fail(ErrMalformed, nil, "the TPM certInfo is truncated or has trailing bytes")
	case magic != tpmGeneratedValue:
		return nil, fail(ErrInvalidAttestation, nil, "the TPM certInfo was not generated by a TPM (magic 0x%08x)", magic)
	case typ != tpmSTAttestCertify:
		return nil, fail(ErrInvalidAttestation, nil, "the TPM certInfo is of type 0x%04x, not a certification (TPM_ST_ATTEST_CERTIFY)", typ)
	}
	return info, nil
}

// tpmReader reads big-endian TPM structures; a short read sets bad and
// returns zero values, so callers check once at the end.
type tpmReader struct {
	b   []byte
	bad bool
}

func (r *tpmReader) take(n int) []byte {
	if r.bad || n > len(r.b) {
		r.bad = true
		return nil
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

func (r *tpmReader) skip(n int) { r.take(n) }

func (r *tpmReader) u16() uint16 {
	if b := r.take(2); b != nil {
		return binary.BigEndian.Uint16(b)
	}
	return 0
}

func (r *tpmReader) u32() uint32 {
	if b := r.take(4); b != nil {
		return binary.BigEndian.Uint32(b)
	}
	return 0
}

// tpm2b reads a TPM2B_ structure: a 16-bit size and that many bytes.
func (r *tpmReader) tpm2b() []byte { return r.take(int(r.u16())) }

// symDef reads TPMT_SYM_DEF_OBJECT: an algorithm, then key bits and mode
// unless the algorithm is TPM_ALG_NULL.
func (r *tpmReader) symDef() {
	if r.u16() != tpmAlgNull {
		r.skip(4)
	}
}

// scheme reads a TPMT_*_SCHEME or TPMT_KDF_SCHEME: a scheme, then its hash
// algorithm unless the scheme is TPM_ALG_NULL.
func (r *tpmReader) scheme() {
	if r.u16() != tpmAlgNull {
		r.skip(2)
	}
}

// checkAIKCert applies the TPM attestation certificate requirements
// (WebAuthn §8.3.1) and the AAGUID extension check of §8.3.2.
func checkAIKCert(c *x509.Certificate, aaguid []byte) error {
	switch {
	case c.Version != 3:
		return fail(ErrInvalidAttestation, nil, "the AIK certificate is not X.509 version 3")
	case len(c.RawSubject) != 2: // an empty Name is the two bytes 30 00
		return fail(ErrInvalidAttestation, nil, "the AIK certificate has a subject (%q); WebAuthn requires it empty", c.Subject.String())
	case !c.BasicConstraintsValid || c.IsCA:
		return fail(ErrInvalidAttestation, nil, "the AIK certificate lacks basic constraints or is a CA certificate")
	case !slices.ContainsFunc(c.UnknownExtKeyUsage, oidTCGKPAIKCertificate.Equal):
		return fail(ErrInvalidAttestation, nil, "the AIK certificate lacks the extended key usage tcg-kp-AIKCertificate (2.23.133.8.3)")
	}
	if err := checkTPMSAN(c); err != nil {
		return err
	}
	return checkAAGUIDExtension(c, aaguid, "AIK")
}

// checkTPMSAN requires the subjectAltName directoryName to name the TPM's
// manufacturer, model and version (TCG EK Credential Profile §3.2.9).
// TPM quirk: some Windows TPMs put the three attributes in one multi-valued
// RDN, others in three RDNs; both are accepted, as every attribute of the
// name is read.
func checkTPMSAN(c *x509.Certificate) error {
	found := map[string]bool{}
	for _, e := range c.Extensions {
		if !e.Id.Equal(oidSAN) {
			continue
		}
		var names []asn1.RawValue
		if rest, err := asn1.Unmarshal(e.Value, &names); err != nil || len(rest) != 0 {
			return fail(ErrMalformed, err, "the AIK certificate's subjectAltName does not parse")
		}
		for _, n := range names {
			if n.Class != asn1.ClassContextSpecific || n.Tag != 4 { // directoryName [4] Name
				continue
			}
			var rdns pkix.RDNSequence
			if _, err := asn1.Unmarshal(n.Bytes, &rdns); err != nil {
				return fail(ErrMalformed, err, "the AIK certificate's subjectAltName directory name does not parse")
			}
			for _, rdn := range rdns {
				for _, atv := range rdn {
					if s, ok := atv.Value.(string); ok && s != "" {
						found[atv.Type.String()] = true
					}
				}
			}
		}
	}
	for _, oid := range []asn1.ObjectIdentifier{oidTCGManufacturer, oidTCGModel, oidTCGVersion} {
		if !found[oid.String()] {
			return fail(ErrInvalidAttestation, nil, "the AIK certificate's subjectAltName lacks the TPM %s (%s)", tcgAttrName(oid), oid)
		}
	}
	return nil
}

func tcgAttrName(oid asn1.ObjectIdentifier) string {
	switch {
	case oid.Equal(oidTCGManufacturer):
		return "manufacturer"
	case oid.Equal(oidTCGModel):
		return "model"
	}
	return "version"
}
