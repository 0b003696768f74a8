package policy_test

import (
	"crypto/x509"
	"strings"
	"testing"
	"time"

	"github.com/keyfleet/keyfleet/attest"
	"github.com/keyfleet/keyfleet/attest/attesttest"
	"github.com/keyfleet/keyfleet/policy"
)

// now is the evaluation time of every test.
var now = time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)

func days(n int) time.Duration { return time.Duration(n) * 24 * time.Hour }

func ago(n int) *time.Time {
	t := now.Add(-days(n))
	return &t
}

// doc parses a document written with tabs for indentation (YAML needs
// spaces), failing the test on error.
func doc(tb testing.TB, yaml string) *policy.Document {
	tb.Helper()
	d, err := policy.Parse("test.yaml", []byte(untab(yaml)))
	if err != nil {
		tb.Fatalf("parsing the test policy:\n%v", err)
	}
	return d
}

func untab(s string) string { return strings.ReplaceAll(s, "\t", "  ") }

func person(name string, groups, roles []string) policy.User {
	return policy.User{ID: "u-" + name, Username: name, Groups: groups, Roles: roles, Kind: "person",
		CreatedAt: now.Add(-days(400))}
}

var (
	alice = person("alice", []string{"engineering"}, nil)
	bob   = person("bob", []string{"sales"}, nil)
	carol = person("carol", []string{"engineering"}, []string{"admin"})
)

// active returns an active factor, used yesterday.
func active(id, kind string, hardware bool, ev *attest.Evidence) policy.Factor {
	return policy.Factor{ID: id, Kind: kind, State: policy.FactorActive, CreatedAt: now.Add(-days(100)),
		ActivatedAt: ago(100), LastUsedAt: ago(1), Evidence: ev, Hardware: hardware}
}

// totp is an active TOTP factor with the default parameters (SHA-1, six
// digits, 30 s).
func totp(id string) policy.Factor {
	f := active(id, "totp", false, nil)
	f.Params = map[string]string{"algorithm": "SHA1", "digits": "6", "period": "30"}
	return f
}

// pivKey is an active PIV factor with minted, verified evidence.
func pivKey(tb testing.TB, id string, o attesttest.PIVOptions) policy.Factor {
	return active(id, "piv", true, pivEvidence(tb, o))
}

// pivEvidence mints a PIV attestation with a test CA and verifies it, so
// the evidence is exactly what enrolment would store.
func pivEvidence(tb testing.TB, o attesttest.PIVOptions) *attest.Evidence {
	tb.Helper()
	ca := attesttest.NewCA(tb)
	slot, dev, _ := ca.MintPIV(o)
	ev, err := attest.VerifyPIV(slot, dev, attest.PIVOptions{Time: attesttest.ValidAt,
		Roots: []*x509.Certificate{ca.Root()}, ExcludeBuiltinRoots: true})
	if err != nil {
		tb.Fatalf("verifying a minted PIV attestation: %v", err)
	}
	return ev
}

// Firmware versions for minted keys.
var (
	fwCurrent = [3]byte{5, 7, 4} // no advisory
	fwEUCLEAK = [3]byte{5, 4, 3} // YSA-2024-03
	fwROCA    = [3]byte{4, 3, 3} // YSA-2017-01 with an on-device RSA key
)

// A FIDO2 security key's evidence. attesttest mints PIV only, and policy
// reads evidence, not attestation bytes, so these are written out.
const (
	aaguidYK5   = "ee882879-721c-4913-9775-3dfcce97072a"
	aaguidOther = "00000000-0000-0000-0000-0000000000aa"
)

func fido2Evidence(aaguid string, attested bool) *attest.Evidence {
	ev := &attest.Evidence{Format: "packed", AAGUID: aaguid, AAGUIDAttested: attested,
		KeyAlgorithm: "EC-P256", AttestationType: attest.AttestationSelf}
	if attested {
		ev.AttestationType, ev.Vendor, ev.Model = attest.AttestationBasic, "Yubico", "YubiKey 5"
		ev.Firmware = "5.7.4"
	}
	return ev
}

func fido2Key(id, aaguid string, attested bool) policy.Factor {
	return active(id, "fido2", true, fido2Evidence(aaguid, attested))
}

func codes(rs []policy.Reason) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.Code
	}
	return out
}

func evaluate(d *policy.Document, u policy.User, fs ...policy.Factor) policy.Decision {
	return policy.Evaluate(d, u, fs, nil, nil, now)
}
