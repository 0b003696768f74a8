package fido2

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyfleet/keyfleet/agent"
	softfido2 "github.com/keyfleet/keyfleet/agent/fido2"
	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/plugins/sdk"
)

// vectorTime is when the shared vectors were collected and checked.
var vectorTime = time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)

// vector is a real browser registration from testdata/attest.
type vector struct {
	Challenge  string          `json:"challenge_b64url"`
	Origin     string          `json:"origin"`
	RPID       string          `json:"rpId"`
	Credential json.RawMessage `json:"credential"`
}

func loadVector(t *testing.T, name string) vector {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("../../../testdata/attest/webauthn", name))
	if err != nil {
		t.Fatal(err)
	}
	var v vector
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestFinishEnrolTakesRealBrowserRegistrations(t *testing.T) {
	tests := []struct {
		name, file         string
		requireAttestation bool
		wantErr            string
		wantType           string
	}{
		{"a YubiKey's packed registration from Firefox enrols with its Yubico chain", "py_webauthn/reg_packed__verify_attestation_from_yubikey_firefox.json", true, "", "basic"},
		{"a YubiKey's fido-u2f registration enrols", "py_webauthn/reg_fido_u2f__verify_attestation_from_yubikey_firefox.json", true, "", "basic"},
		{"an unattested registration enrols when attestation is not required", "py_webauthn/reg__verifies_none_attestation_response.json", false, "", "none"},
		{"an unattested registration is refused when attestation is required", "py_webauthn/reg__verifies_none_attestation_response.json", true, "requires one", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := loadVector(t, tt.file)
			f := newKind(t, Config{RPID: v.RPID, Origins: []string{v.Origin}, RequireAttestation: tt.requireAttestation, Now: func() time.Time { return vectorTime }})
			var challenge api.B64URL
			quoted, _ := json.Marshal(v.Challenge)
			if err := challenge.UnmarshalJSON(quoted); err != nil {
				t.Fatal(err)
			}
			begun, err := f.BeginEnrol(ctx, sdk.BeginEnrolRequest{User: alice, Challenge: challenge})
			if err != nil {
				t.Fatal(err)
			}
			res, err := f.FinishEnrol(ctx, sdk.FinishEnrolRequest{Challenge: challenge, State: begun.State, Response: v.Credential})
			if tt.wantErr != "" {
				if !errors.Is(err, ErrRejected) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var ev struct {
				Type string `json:"attestation_type"`
			}
			json.Unmarshal(res.Evidence, &ev)
			if ev.Type != tt.wantType || res.Device != nil || len(res.State) == 0 {
				t.Fatalf("evidence %s, device %+v", res.Evidence, res.Device)
			}
		})
	}
}

func TestASoftwareKeyEnrolsAndVerifies(t *testing.T) {
	ca, _ := softfido2.NewCA()
	f := newKind(t, Config{Roots: roots(ca), RequireAttestation: true, EnterpriseAttestation: true})
	key := newSoft(t, ca, softfido2.SoftOptions{Serial: 41000001, Enterprise: true})
	if err := key.SetPIN("4711"); err != nil {
		t.Fatal(err)
	}
	e := begin(t, f, nil)
	reg, err := agent.Register(key, e.opts, agent.Ceremony{Origin: origin, PIN: "4711"})
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.finish(f, reg)
	if err != nil {
		t.Fatal(err)
	}
	want := sdk.Device{Vendor: "Yubico", Serial: "41000001", Firmware: "5.7.4", Model: "FIDO2 key (AAGUID 6b657966-6c65-6574-2d73-6f66742d3031)"}
	if res.Device == nil || *res.Device != want || res.Pending {
		t.Fatalf("device %+v pending %v", res.Device, res.Pending)
	}
	state := res.State
	for i := 0; i < 2; i++ {
		out := assert(t, f, state, key, agent.Ceremony{PIN: "4711"}, nil)
		if !out.OK || out.State == nil {
			t.Fatalf("verification %d: %+v", i, out)
		}
		state = out.State
	}
}

func TestBatchAttestationEnrolsWithoutADevice(t *testing.T) {
	ca, _ := softfido2.NewCA()
	f := newKind(t, Config{Roots: roots(ca), RequireAttestation: true})
	key := newSoft(t, ca, softfido2.SoftOptions{Enterprise: true})
	e := begin(t, f, nil)
	if e.opts.Attestation != "direct" {
		t.Fatalf("attestation %q", e.opts.Attestation)
	}
	reg, _ := agent.Register(key, e.opts, agent.Ceremony{Origin: origin})
	res, err := e.finish(f, reg)
	if err != nil || res.Device != nil {
		t.Fatalf("%+v %v", res.Device, err)
	}
}

func TestFinishEnrolRejects(t *testing.T) {
	ca, _ := softfido2.NewCA()
	other, _ := softfido2.NewCA()
	tests := []struct {
		name    string
		trust   *softfido2.CA
		origin  string
		tamper  func(e *enrolment, reg *api.FIDO2Registration)
		wantErr string
		invalid bool
	}{
		{name: "a key from an untrusted root", trust: other, wantErr: "does not chain to a trusted root"},
		{name: "a registration made on another origin", trust: ca, origin: "https://evil.test", wantErr: "not an accepted origin"},
		{name: "a registration replayed into another enrolment", trust: ca, tamper: func(e *enrolment, _ *api.FIDO2Registration) {
			e.challenge = random(t, 32)
		}, wantErr: "another challenge"},
		{name: "a rawId that is not the credential", trust: ca, tamper: func(_ *enrolment, r *api.FIDO2Registration) {
			r.RawID = append(r.RawID, 1)
			r.ID = strings.TrimRight(r.ID, "=") + "AQ"
		}, invalid: true},
		{name: "a payload that is not a public-key credential", trust: ca, tamper: func(_ *enrolment, r *api.FIDO2Registration) {
			r.Type = "password"
		}, invalid: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newKind(t, Config{Roots: roots(tt.trust), RequireAttestation: true})
			key := newSoft(t, ca, softfido2.SoftOptions{})
			e := begin(t, f, nil)
			o := origin
			if tt.origin != "" {
				o = tt.origin
			}
			reg, err := agent.Register(key, e.opts, agent.Ceremony{Origin: o})
			if err != nil {
				t.Fatal(err)
			}
			if tt.tamper != nil {
				tt.tamper(&e, &reg)
			}
			_, err = e.finish(f, reg)
			if !errors.Is(err, sdk.ErrInvalidRequest) || (!tt.invalid && (!errors.Is(err, ErrRejected) || !strings.Contains(err.Error(), tt.wantErr))) {
				t.Fatalf("error %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestFinishVerifyRefuses(t *testing.T) {
	ca, _ := softfido2.NewCA()
	f := newKind(t, Config{Roots: roots(ca)})
	dir := t.TempDir()
	key := newSoft(t, ca, softfido2.SoftOptions{Path: filepath.Join(dir, "key.json")})
	state := enrolSoft(t, f, key)
	tests := []struct {
		name       string
		ceremony   agent.Ceremony
		change     func(*api.FIDO2Assertion)
		want       string
		suspicious bool
	}{
		{name: "an assertion made on another origin", ceremony: agent.Ceremony{Origin: "https://evil.test"}, want: "not an accepted origin"},
		{name: "an assertion from another credential", change: func(a *api.FIDO2Assertion) {
			a.RawID = append(api.B64URL{9}, a.RawID...)
			a.ID = ""
		}, want: "another credential"},
		{name: "an assertion over another challenge", change: func(a *api.FIDO2Assertion) {
			a.Response.ClientDataJSON = []byte(strings.Replace(string(a.Response.ClientDataJSON), `"challenge":"`, `"challenge":"AA`, 1))
		}, want: "another challenge"},
		{name: "a signature over other data", change: func(a *api.FIDO2Assertion) {
			a.Response.AuthenticatorData[len(a.Response.AuthenticatorData)-1]++
		}, want: "signature"},
		{name: "an assertion without touch", change: func(a *api.FIDO2Assertion) {
			a.Response.AuthenticatorData[32] &^= 0x01
		}, want: "no touch"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := assert(t, f, state, key, tt.ceremony, tt.change)
			if out.OK || !strings.Contains(out.Reason, tt.want) || out.Suspicious != tt.suspicious || out.State != nil {
				t.Fatalf("%+v, want %q", out, tt.want)
			}
		})
	}
}

func TestASignCounterThatGoesBackIsAPossibleClone(t *testing.T) {
	ca, _ := softfido2.NewCA()
	f := newKind(t, Config{Roots: roots(ca)})
	dir := t.TempDir()
	path := filepath.Join(dir, "key.json")
	key := newSoft(t, ca, softfido2.SoftOptions{Path: path})
	state := enrolSoft(t, f, key)
	// The clone is a copy of the key's secrets taken now.
	b, _ := os.ReadFile(path)
	clonePath := filepath.Join(dir, "clone.json")
	os.WriteFile(clonePath, b, 0o600)
	clone, err := softfido2.NewSoft(softfido2.SoftOptions{Path: clonePath})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		out := assert(t, f, state, key, agent.Ceremony{}, nil)
		if !out.OK {
			t.Fatal(out.Reason)
		}
		state = out.State
	}
	out := assert(t, f, state, clone, agent.Ceremony{}, nil)
	if out.OK || !out.Suspicious || out.Reason != ReasonCloned || out.State != nil {
		t.Fatalf("%+v", out)
	}
}

func TestRequiredUserVerificationRefusesAnAssertionWithoutPIN(t *testing.T) {
	ca, _ := softfido2.NewCA()
	f := newKind(t, Config{Roots: roots(ca)})
	key := newSoft(t, ca, softfido2.SoftOptions{})
	key.SetPIN("4711")
	e := begin(t, f, map[string]string{api.FIDO2OptUserVerification: "required"})
	reg, err := agent.Register(key, e.opts, agent.Ceremony{Origin: origin, PIN: "4711"})
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.finish(f, reg)
	if err != nil {
		t.Fatal(err)
	}
	out := assert(t, f, res.State, key, agent.Ceremony{PIN: "4711"}, func(a *api.FIDO2Assertion) {
		a.Response.AuthenticatorData[32] &^= 0x04 // clear UV; the signature then fails too
	})
	if out.OK || !strings.Contains(out.Reason, "verify the user") {
		t.Fatalf("%+v", out)
	}
}

func TestBeginEnrolGivesWebAuthnCreationOptions(t *testing.T) {
	f := newKind(t, Config{RPDisplayName: "Example Corp", EnterpriseAttestation: true})
	challenge := random(t, 32)
	res, err := f.BeginEnrol(ctx, sdk.BeginEnrolRequest{User: alice, Challenge: challenge,
		Options: map[string]string{api.FIDO2OptExcludeCredentials: "AQID,BAUG", api.FIDO2OptUserVerification: "required"}})
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(res.Params[api.FIDO2ParamOptions]), &got); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"rp", "user", "challenge", "pubKeyCredParams", "timeout", "excludeCredentials", "authenticatorSelection", "attestation"} {
		if _, ok := got[k]; !ok {
			t.Errorf("creation options lack %q", k)
		}
	}
	user := got["user"].(map[string]any)
	sel := got["authenticatorSelection"].(map[string]any)
	ex := got["excludeCredentials"].([]any)
	if user["id"] != "dXNyX2FsaWNl" || got["attestation"] != "enterprise" || sel["userVerification"] != "required" ||
		len(ex) != 2 || ex[0].(map[string]any)["id"] != "AQID" || strings.ContainsAny(got["challenge"].(string), "+/=") {
		t.Fatalf("options %s", res.Params[api.FIDO2ParamOptions])
	}
	if res.Params[api.FIDO2ParamOrigin] != origin {
		t.Fatalf("origin %q", res.Params[api.FIDO2ParamOrigin])
	}
}

func TestNewAndBeginEnrolValidate(t *testing.T) {
	configs := []struct {
		name string
		cfg  Config
	}{
		{"no relying party ID", Config{}},
		{"an origin with a path", Config{RPID: rpID, Origins: []string{"https://keyfleet.test/login"}}},
		{"an unknown user verification", Config{RPID: rpID, UserVerification: "sometimes"}},
	}
	for _, c := range configs {
		if _, err := New(c.cfg); err == nil {
			t.Errorf("%s: accepted", c.name)
		}
	}
	f := newKind(t, Config{})
	for _, o := range []map[string]string{{"attestation": "indirect"}, {"user_verification": "never"}, {"exclude_credentials": "!!"}} {
		if _, err := f.BeginEnrol(ctx, sdk.BeginEnrolRequest{User: alice, Challenge: random(t, 32), Options: o}); !errors.Is(err, sdk.ErrInvalidRequest) {
			t.Errorf("options %v: %v", o, err)
		}
	}
}

// TestTheAgentClaimsTheOriginThePromptNames: keyfleetd behind an origin
// with a port (https://localhost:8443 in make run) names it in the
// prompt, and the agent, which is no browser, claims it: "https://" +
// rpId alone would be refused as another origin.
func TestTheAgentClaimsTheOriginThePromptNames(t *testing.T) {
	ca, _ := softfido2.NewCA()
	f := newKind(t, Config{Roots: roots(ca)})
	key := newSoft(t, ca, softfido2.SoftOptions{Serial: 41000009})
	state := enrolSoft(t, f, key)
	begun, err := f.BeginVerify(ctx, sdk.BeginVerifyRequest{State: state, Challenge: random(t, 32)})
	if err != nil {
		t.Fatal(err)
	}
	var opts api.FIDO2RequestOptions
	if err := json.Unmarshal(begun.Prompt, &opts); err != nil || opts.Origin != origin {
		t.Fatalf("the prompt names origin %q, want %q (%v)", opts.Origin, origin, err)
	}
	resp, err := agent.Keys{FIDO2: key}.Answer(api.VerificationFactor{Kind: "fido2", Prompt: begun.Prompt})
	if err != nil {
		t.Fatal(err)
	}
	res, err := f.FinishVerify(ctx, sdk.FinishVerifyRequest{State: state, Session: begun.Session, Response: resp})
	if err != nil || !res.OK {
		t.Fatalf("an assertion claiming the prompt's origin: %+v %v", res, err)
	}
}
