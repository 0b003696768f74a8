package attest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"strings"
	"time"
)

// Metadata is a verified FIDO Metadata Service (MDS3) blob, indexed by
// AAGUID. Build it with ParseMetadata; it is immutable and safe for
// concurrent use.
type Metadata struct {
	entries    map[string]MetadataEntry
	nextUpdate time.Time
	number     int
}

// MetadataEntry is what the blob says about one authenticator model.
type MetadataEntry struct {
	AAGUID        string         `json:"aaguid"`
	Description   string         `json:"description"`
	StatusReports []StatusReport `json:"statusReports"`
}

// StatusReport is one status of an authenticator model (FIDO MDS3 §3.1.3).
type StatusReport struct {
	Status        string `json:"status"`
	EffectiveDate string `json:"effectiveDate,omitempty"`
}

// mdsPayload is the part of the MDS3 BLOB payload (MDS3 §3.1.6) we use.
type mdsPayload struct {
	No         int    `json:"no"`
	NextUpdate string `json:"nextUpdate"`
	Entries    []struct {
		AAGUID            string         `json:"aaguid"`
		StatusReports     []StatusReport `json:"statusReports"`
		MetadataStatement struct {
			Description string `json:"description"`
		} `json:"metadataStatement"`
	} `json:"entries"`
}

// ParseMetadata verifies an MDS3 BLOB (a JWS, MDS3 §3.2) whose x5c header
// chains to root at time at, and indexes its entries by AAGUID. root is the
// FIDO Alliance's MDS root for the production service, or the conformance
// root in tests. A stale blob (past nextUpdate) still parses: see Stale.
//
// Errors (all *Error): ErrInvalidOptions, ErrMalformed, ErrExpired,
// ErrUntrustedChain, ErrInvalidAttestation (the signature does not verify).
func ParseMetadata(blob []byte, root *x509.Certificate, at time.Time) (*Metadata, error) {
	if root == nil || at.IsZero() {
		return nil, fail(ErrInvalidOptions, nil, "the metadata root and a verification time are required")
	}
	parts := strings.Split(strings.TrimSpace(string(blob)), ".")
	if len(parts) != 3 {
		return nil, fail(ErrMalformed, nil, "the metadata blob is not a JWS (three dot-separated parts)")
	}
	signer, alg, err := verifyMDSHeader(parts[0], root, at)
	if err != nil {
		return nil, err
	}
	sig, err := decodeB64URL(parts[2])
	if err != nil {
		return nil, fail(ErrMalformed, err, "the metadata blob signature is not base64url")
	}
	if err := verifyJWS(signer, alg, parts[0]+"."+parts[1], sig); err != nil {
		return nil, err
	}
	raw, err := decodeB64URL(parts[1])
	if err != nil {
		return nil, fail(ErrMalformed, err, "the metadata blob payload is not base64url")
	}
	return indexMetadata(raw)
}

// verifyMDSHeader reads the JWS header (RFC 7515 §4.1) and verifies its x5c
// chain to root.
func verifyMDSHeader(header string, root *x509.Certificate, at time.Time) (crypto.PublicKey, string, error) {
	raw, err := decodeB64URL(header)
	var h struct {
		Alg string   `json:"alg"`
		X5C []string `json:"x5c"`
	}
	if err != nil || json.Unmarshal(raw, &h) != nil || len(h.X5C) == 0 {
		return nil, "", fail(ErrMalformed, err, "the metadata blob header is unreadable or has no certificate chain")
	}
	list := make([]any, len(h.X5C))
	for i, s := range h.X5C {
		if list[i], err = base64.StdEncoding.DecodeString(s); err != nil {
			return nil, "", fail(ErrMalformed, err, "certificate %d of the metadata blob header is not base64", i+1)
		}
	}
	certs, err := parseX5C(list, false)
	if err != nil {
		return nil, "", err
	}
	if _, err := verifyFIDOChain(certs, FIDO2Expectation{Time: at, Roots: []*x509.Certificate{root}, ExcludeBuiltinRoots: true}); err != nil {
		return nil, "", err
	}
	return certs[0].PublicKey, h.Alg, nil
}

// verifyJWS checks the metadata blob's signature.
func verifyJWS(pub crypto.PublicKey, alg, signed string, sig []byte) error {
	if err := verifyJWSSignature(pub, alg, signed, sig); err != nil {
		return fail(ErrInvalidAttestation, err, "the metadata blob signature (%s) does not verify", alg)
	}
	return nil
}

// verifyJWSSignature checks an ES256 or RS256 JWS signature (RFC 7518
// §3.3, §3.4).
func verifyJWSSignature(pub crypto.PublicKey, alg, signed string, sig []byte) error {
	digest := sha256.Sum256([]byte(signed))
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if alg == "ES256" && len(sig) == 64 &&
			ecdsa.Verify(k, digest[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
			return nil
		}
	case *rsa.PublicKey:
		if alg == "RS256" {
			return rsa.VerifyPKCS1v15(k, crypto.SHA256, digest[:], sig)
		}
	}
	return fmt.Errorf("%s signature by a %T key does not verify", alg, pub)
}

func indexMetadata(raw []byte) (*Metadata, error) {
	var p mdsPayload
	if err := json.Unmarshal(raw, &p); err != nil {
		return nil, fail(ErrMalformed, err, "the metadata blob payload is not valid JSON")
	}
	next, err := time.Parse(time.DateOnly, p.NextUpdate)
	if err != nil {
		return nil, fail(ErrMalformed, err, "the metadata blob's nextUpdate %q is not a date", p.NextUpdate)
	}
	m := &Metadata{entries: map[string]MetadataEntry{}, nextUpdate: next, number: p.No}
	for _, e := range p.Entries {
		if e.AAGUID == "" { // U2F and UAF entries are keyed otherwise
			continue
		}
		id := strings.ToLower(e.AAGUID)
		m.entries[id] = MetadataEntry{AAGUID: id, Description: e.MetadataStatement.Description, StatusReports: e.StatusReports}
	}
	return m, nil
}

// Lookup returns the entry for an AAGUID ("cb69481e-8ff7-...").
func (m *Metadata) Lookup(aaguid string) (MetadataEntry, bool) {
	e, ok := m.entries[strings.ToLower(aaguid)]
	return e, ok
}

// Len is the number of entries with an AAGUID.
func (m *Metadata) Len() int { return len(m.entries) }

// Number is the blob's serial number ("no").
func (m *Metadata) Number() int { return m.number }

// NextUpdate is when the blob says a newer one will be published.
func (m *Metadata) NextUpdate() time.Time { return m.nextUpdate }

// Stale reports whether the blob is past its nextUpdate at time at: the
// caller should fetch a newer blob and may warn.
func (m *Metadata) Stale(at time.Time) bool { return at.After(m.nextUpdate) }

// Status returns the latest status report of an entry (MDS3 lists them
// oldest first), or "" when there is none.
func (e MetadataEntry) Status() string {
	if len(e.StatusReports) == 0 {
		return ""
	}
	return e.StatusReports[len(e.StatusReports)-1].Status
}

// apply checks attested evidence against the metadata: a revoked or
// compromised model is rejected; the description becomes the model. A nil
// Metadata, or an unattested AAGUID, is left alone.
func (m *Metadata) apply(ev *Evidence, _ time.Time) error {
	if m == nil || !ev.AAGUIDAttested {
		return nil
	}
	e, ok := m.Lookup(ev.AAGUID)
	if !ok {
		return nil
	}
	if st := e.Status(); st == "REVOKED" || strings.HasSuffix(st, "_COMPROMISE") {
		return fail(ErrRevoked, nil, "the FIDO Metadata Service reports %q (%s) as %s", e.Description, e.AAGUID, st)
	}
	if ev.Model == "" {
		ev.Model = e.Description
	}
	return nil
}
