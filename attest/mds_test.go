package attest

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

const mdsBlob = "mds/simplewebauthn-conformance-mds3-blob.jwt"

// The blob has 200 entries; 100 are FIDO2 entries keyed by AAGUID.
func TestParseMetadataVerifiesTheConformanceBlob(t *testing.T) {
	m, err := ParseMetadata(readVector(t, mdsBlob), certVector(t, "mds/mds-conformance-root-FAKE.pem"), vectorTime)
	if err != nil {
		t.Fatal(err)
	}
	if m.Number() != 42 || m.Len() != 100 || !m.Stale(vectorTime) || m.NextUpdate().Format("2006-01-02") != "2023-11-08" {
		t.Fatalf("blob no %d with %d entries, next update %s, stale %v", m.Number(), m.Len(), m.NextUpdate(), m.Stale(vectorTime))
	}
}

func TestParseMetadataRejects(t *testing.T) {
	blob := readVector(t, mdsBlob)
	fake := certVector(t, "mds/mds-conformance-root-FAKE.pem")
	tampered := append([]byte(nil), blob...)
	tampered[len(tampered)/2] ^= 0x01 // inside the payload
	tests := []struct {
		name string
		blob []byte
		root string
		want error
	}{
		{"a conformance blob is untrusted under the production root", blob, "mds/mds-production-root-globalsign-r3.pem", ErrUntrustedChain},
		{"a blob with a changed payload fails its signature", tampered, "", ErrInvalidAttestation},
		{"a truncated blob is malformed", blob[:len(blob)/3], "", ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := fake
			if tc.root != "" {
				root = certVector(t, tc.root)
			}
			_, err := ParseMetadata(tc.blob, root, vectorTime)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func TestMetadataRejectsCompromisedAuthenticatorsOnly(t *testing.T) {
	m, err := ParseMetadata(readVector(t, mdsBlob), certVector(t, "mds/mds-conformance-root-FAKE.pem"), vectorTime)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		aaguid   string
		attested bool
		want     error
	}{
		{"an attested authenticator whose attestation key is compromised is revoked", "71bf3f7f-ad51-432a-aaf0-4783108d5620", true, ErrRevoked},
		{"an attested authenticator with remotely extractable keys is revoked", "7061d58b-c22e-429b-a29b-c8bcc4857b40", true, ErrRevoked},
		{"a certified authenticator passes", "a14eb40d-3b89-4f3b-8d46-13cdf3de625c", true, nil},
		{"an unattested AAGUID is not looked up", "71bf3f7f-ad51-432a-aaf0-4783108d5620", false, nil},
		{"an authenticator missing from the blob passes", "00000000-0000-0000-0000-000000000001", true, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ev := &Evidence{AAGUID: tc.aaguid, AAGUIDAttested: tc.attested}
			if err := m.apply(ev, vectorTime); !errors.Is(err, tc.want) || (err == nil && tc.want != nil) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if tc.want == nil && tc.attested && ev.Model == "" && tc.aaguid[0] == 'a' {
				t.Fatal("the metadata description was not used as the model")
			}
		})
	}
}

func FuzzParseMetadata(f *testing.F) {
	// The real header and signature around a small payload: a seed that
	// reaches the chain and signature checks without 2 MB of JSON.
	parts := strings.Split(string(readVector(f, mdsBlob)), ".")
	small := base64.RawURLEncoding.EncodeToString([]byte(`{"no":1,"nextUpdate":"2023-11-08","entries":[]}`))
	f.Add([]byte(parts[0] + "." + small + "." + parts[2]))
	f.Add([]byte("eyJhbGciOiJFUzI1NiJ9.e30.AAAA"))
	root := certVector(f, "mds/mds-conformance-root-FAKE.pem")
	f.Fuzz(func(t *testing.T, blob []byte) {
		_, err := ParseMetadata(blob, root, vectorTime)
		assertTypedError(t, err)
	})
}
