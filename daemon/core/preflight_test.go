package core_test

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/attest/attesttest"
	"github.com/keyfleet/keyfleet/daemon/core"
	"github.com/keyfleet/keyfleet/daemon/core/coretest"
	pivkind "github.com/keyfleet/keyfleet/daemon/kinds/piv"
	"github.com/keyfleet/keyfleet/daemon/store"
	"github.com/keyfleet/keyfleet/policy"
)

// hardwarePolicy has a rule for each kind of hardware requirement the
// pre-flight must judge before an agent wipes a key.
const hardwarePolicy = `version: 1
rules:
  - name: everyone
    match: {everyone: true}
  - name: finance
    match: {groups: [finance]}
    require: {block_advisories: [YSA-2024-03]}
  - name: engineering
    match: {groups: [eng]}
    require:
      min_firmware: {"YubiKey 5": 5.7.2}
  - name: labs
    match: {groups: [labs]}
    require: {fips_required: true}
`

// newPIVEnv is a service with the real piv kind trusting ca (and, for
// the kind's own requirements, defaults), under hardwarePolicy.
func newPIVEnv(t *testing.T, ca *attesttest.CA, defaults pivkind.Requirements) *env {
	t.Helper()
	st, err := store.Open(store.Options{InMemory: true, EncryptionKey: make([]byte, 32)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	kind, err := pivkind.New(pivkind.Config{Roots: []*x509.Certificate{ca.Root()}, Defaults: defaults})
	if err != nil {
		t.Fatal(err)
	}
	e := envWithKinds(t, st, coretest.Kind{}, coretest.Key{}, kind)
	e.applyPolicy(e.admin, hardwarePolicy)
	return e
}

// TestThePreflightRefusesAKeyThePolicyWouldRefuse: the pre-flight runs
// the policy's enrolment rules for the user on what the key will attest,
// so an agent refuses before it wipes the key; completion, on the key as
// it would then attest, agrees every time.
func TestThePreflightRefusesAKeyThePolicyWouldRefuse(t *testing.T) {
	ca := attesttest.NewCA(t)
	e := newPIVEnv(t, ca, pivkind.Requirements{})
	tests := []struct {
		name   string
		groups []string
		key    attesttest.PIVOptions
		want   []string // in the refusal; nil: accepted
	}{
		{"a key in an advisory's firmware range is refused where the advisory is blocked", []string{"finance"},
			attesttest.PIVOptions{Firmware: [3]byte{5, 4, 3}}, []string{"YSA-2024-03", "rule finance", "which the policy blocks"}},
		{"the same key is accepted where nothing blocks it", nil, attesttest.PIVOptions{Firmware: [3]byte{5, 4, 3}}, nil},
		{"a Bio key below its own fix is refused by its model's threshold", []string{"finance"},
			attesttest.PIVOptions{Firmware: [3]byte{5, 7, 1}, FormFactor: 0x07}, []string{"YSA-2024-03", "YubiKey Bio"}},
		{"a keychain key with that firmware is fixed", []string{"finance"}, attesttest.PIVOptions{Firmware: [3]byte{5, 7, 1}}, nil},
		{"firmware below the model line's minimum is refused", []string{"eng"},
			attesttest.PIVOptions{Firmware: [3]byte{5, 7, 0}}, []string{"rule engineering", "below the 5.7.2", "YubiKey 5"}},
		{"a key that is not FIPS is refused where FIPS is required", []string{"labs"}, attesttest.PIVOptions{}, []string{"rule labs", "FIPS"}},
		{"a FIPS key is accepted where FIPS is required", []string{"labs"}, attesttest.PIVOptions{FIPS: true}, nil},
		{"every rule the key fails is named", []string{"finance", "eng"},
			attesttest.PIVOptions{Firmware: [3]byte{5, 4, 3}}, []string{"rules finance, engineering"}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			tt.key.Serial, tt.key.TouchPolicy = uint32(30000001+i), 2 // what the enrolment asks
			slot, dev, key := ca.MintPIV(tt.key)
			u := e.person("p"+strconv.Itoa(i), tt.groups...)
			en, _, err := e.svc.CreateEnrolment(ctx, e.admin, api.CreateEnrolment{User: u.Username, Kind: "piv"})
			if err != nil {
				t.Fatal(err)
			}
			head := e.auditHead()
			in := api.Preflight{Vendor: "Yubico", Serial: strconv.Itoa(int(tt.key.Serial)), DeviceCert: dev.Raw, FormFactor: formFactor(tt.key)}
			pf, err := e.svc.PreflightEnrolment(ctx, e.admin, en.ID, in)
			if e.auditHead() != head {
				t.Fatal("the pre-flight changed something")
			}
			_, cerr := e.svc.CompleteEnrolment(ctx, e.admin, en.ID, api.CompleteEnrolment{Payload: pivPayload(t, slot, dev, key, en.Challenge)})
			if tt.want == nil {
				if err != nil || cerr != nil || !strings.Contains(pf.Checks[len(pf.Checks)-1], "policy's rules for "+u.Username+" accept") {
					t.Fatalf("pre-flight %+v, %v; completion %v: want both to accept", pf, err, cerr)
				}
				return
			}
			var re *policy.RequirementError
			if !errors.Is(err, core.ErrPolicyViolation) || !errors.As(err, &re) || !strings.Contains(err.Error(), "nothing on the key was changed") {
				t.Fatalf("pre-flight: %v; want a policy refusal that says the key is untouched", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("the refusal %q does not say %q", err, w)
				}
			}
			var cre *policy.RequirementError
			if !errors.As(cerr, &cre) || reasonCodes(cre) != reasonCodes(re) {
				t.Fatalf("completion on the changed key: %v; want the pre-flight's reasons %s", cerr, reasonCodes(re))
			}
		})
	}
}

// TestThePreflightRefusesFirmwareBelowTheKindsMinimum: the piv kind's own
// min_firmware is checked before the key changes, too.
func TestThePreflightRefusesFirmwareBelowTheKindsMinimum(t *testing.T) {
	ca := attesttest.NewCA(t)
	e := newPIVEnv(t, ca, pivkind.Requirements{MinFirmware: "5.7.0"})
	ctx := context.Background()
	u := e.person("old")
	_, dev, _ := ca.MintPIV(attesttest.PIVOptions{Firmware: [3]byte{5, 4, 3}})
	en, _, err := e.svc.CreateEnrolment(ctx, e.admin, api.CreateEnrolment{User: u.Username, Kind: "piv"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.PreflightEnrolment(ctx, e.admin, en.ID, api.Preflight{Vendor: "Yubico", Serial: "30000100", DeviceCert: dev.Raw})
	if !errors.Is(err, core.ErrInvalid) || !strings.Contains(err.Error(), "firmware 5.4.3 is below the minimum 5.7.0") {
		t.Fatalf("pre-flight: %v", err)
	}
}

func formFactor(o attesttest.PIVOptions) uint8 {
	if o.FIPS {
		return o.FormFactor | 0x80
	}
	return o.FormFactor
}

func reasonCodes(re *policy.RequirementError) string {
	var out []string
	for _, r := range re.Reasons {
		out = append(out, r.Code)
	}
	return strings.Join(out, ",")
}

// pivPayload is what an agent sends to complete a piv enrolment on the
// key: its certificates and its signature over the challenge.
func pivPayload(t *testing.T, slot, dev *x509.Certificate, key crypto.Signer, challenge []byte) json.RawMessage {
	t.Helper()
	digest := sha256.Sum256(challenge)
	sig, err := key.Sign(rand.Reader, digest[:], crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(api.PIVEnrolment{SlotCert: slot.Raw, DeviceCert: dev.Raw, Signature: sig})
	return b
}
