package piv

import (
	"crypto/x509"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/attest"
	"github.com/keyfleet/keyfleet/attest/attesttest"
)

// TestCheckDeviceSaysWhatTheKeyWillAttest: before the agent changes a
// key, CheckDevice returns the evidence completion will see, from the F9
// certificate, the form factor the agent read and the enrolment's
// params, or says why the key would be refused.
func TestCheckDeviceSaysWhatTheKeyWillAttest(t *testing.T) {
	ca, other := attesttest.NewCA(t), attesttest.NewCA(t)
	reloaded := []*x509.Certificate{}
	f, err := New(Config{RootsFunc: func() []*x509.Certificate { return reloaded }})
	if err != nil {
		t.Fatal(err)
	}
	params := func(o map[string]string) []byte {
		r, _ := fromOptions(o).withDefaults(f.cfg.Defaults)
		b, _ := json.Marshal(r.params())
		return b
	}
	tests := []struct {
		name    string
		roots   []*x509.Certificate
		key     attesttest.PIVOptions
		claim   uint8
		params  []byte
		want    func(*attest.Evidence) bool
		wantErr string
	}{
		{name: "a key under a root reloaded since start is checked against it", roots: []*x509.Certificate{ca.Root()},
			key: attesttest.PIVOptions{}, params: params(nil),
			want: func(e *attest.Evidence) bool {
				return e.Model == "YubiKey 5" && e.Firmware == "5.7.4" && e.Slot == "9a" && e.KeyAlgorithm == "EC-P256" &&
					e.PINPolicy == "once" && e.TouchPolicy == "always" && e.AttestationType == attest.AttestationCA && len(e.Advisories) == 0
			}},
		{name: "a key under a root no longer trusted is refused", roots: []*x509.Certificate{other.Root()}, params: params(nil), wantErr: "does not chain"},
		{name: "a Bio key the agent read is named as one, with its advisory", roots: []*x509.Certificate{ca.Root()},
			key: attesttest.PIVOptions{Firmware: [3]byte{5, 7, 1}}, claim: 0x07, params: params(nil),
			want: func(e *attest.Evidence) bool {
				return e.Model == "YubiKey Bio" && e.FormFactor == "USB-C Bio Keychain" && len(e.Advisories) == 1 && e.Advisories[0].ID == "YSA-2024-03"
			}},
		{name: "the F9 FIPS marker makes a FIPS model", roots: []*x509.Certificate{ca.Root()}, key: attesttest.PIVOptions{FIPS: true}, params: params(nil),
			want: func(e *attest.Evidence) bool { return e.FIPS && e.Model == "YubiKey 5 FIPS" }},
		{name: "the policies and algorithm are the enrolment's", roots: []*x509.Certificate{ca.Root()},
			params: params(map[string]string{"pin_policy": "always", "touch_policy": "cached", "algorithm": "RSA-2048"}),
			want: func(e *attest.Evidence) bool {
				return e.PINPolicy == "always" && e.TouchPolicy == "cached" && e.KeyAlgorithm == "RSA-2048"
			}},
		{name: "firmware below the enrolment's minimum is refused", roots: []*x509.Certificate{ca.Root()},
			key: attesttest.PIVOptions{Firmware: [3]byte{5, 4, 3}}, params: params(map[string]string{"min_firmware": "5.7.0"}),
			wantErr: "firmware 5.4.3 is below the minimum 5.7.0"},
		{name: "params that are not the piv kind's are refused", roots: []*x509.Certificate{ca.Root()}, params: []byte(`{"slot":"zz"}`),
			wantErr: "not the piv kind's"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reloaded = tt.roots
			_, dev, _ := ca.MintPIV(tt.key)
			ev, err := f.CheckDevice(api.Preflight{Vendor: "Yubico", Serial: "12345678", DeviceCert: dev.Raw, FormFactor: tt.claim},
				tt.params, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || !tt.want(ev) {
				t.Fatalf("evidence %+v, %v", ev, err)
			}
		})
	}
}
