package agent

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"strings"
	"testing"

	"github.com/keyfleet/keyfleet/api"
)

// fakeToken fails at one step, to show what the operator sees, and
// records what was done to it.
type fakeToken struct {
	PIVToken
	failSetPIN error
	steps      []string
}

func (f *fakeToken) DeviceCertificate() (*x509.Certificate, error) { return nil, nil }
func (f *fakeToken) Reset() error                                  { f.steps = append(f.steps, "reset"); return nil }

func (f *fakeToken) Info() (DeviceInfo, error)     { return DeviceInfo{Serial: 1}, nil }
func (f *fakeToken) IsFactoryFresh() (bool, error) { return true, nil }
func (f *fakeToken) SetManagementKey([]byte) error {
	f.steps = append(f.steps, "management key")
	return nil
}
func (f *fakeToken) SetPIN(_, _ string) error        { return f.failSetPIN }
func (f *fakeToken) SetPUK(_, _ string) error        { return nil }
func (f *fakeToken) StoreManagementKey([]byte) error { return nil }

// fakeDaemon refuses the pre-flight with preflightErr, and completion
// with completeErr.
type fakeDaemon struct {
	preflightErr, completeErr error
	cancelled                 []string
}

func (d *fakeDaemon) PreflightEnrolment(context.Context, string, api.Preflight) (api.PreflightResult, error) {
	return api.PreflightResult{}, d.preflightErr
}

func (d *fakeDaemon) CancelEnrolment(_ context.Context, id string) (api.Enrolment, error) {
	d.cancelled = append(d.cancelled, id)
	return api.Enrolment{}, nil
}

func (*fakeDaemon) CreateEnrolment(context.Context, api.CreateEnrolment) (api.Enrolment, error) {
	return api.Enrolment{ID: "enr_1", Params: []byte(`{"slot":"9a","algorithm":"EC-P256","pin_policy":"once","touch_policy":"always"}`)}, nil
}

func (d *fakeDaemon) CompleteEnrolment(context.Context, string, api.CompleteEnrolment) (api.Factor, error) {
	return api.Factor{}, cmpOr(d.completeErr, errors.New("not reached"))
}

func TestProvisionErrorsCarryNoSecret(t *testing.T) {
	tok := &fakeToken{failSetPIN: &WrongPINError{Retries: 2}}
	res, err := ProvisionPIV(context.Background(), &fakeDaemon{}, tok, ProvisionOptions{User: "alice", PIN: "97531864"})
	var wp *WrongPINError
	if !errors.As(err, &wp) || wp.Retries != 2 {
		t.Fatalf("error %v", err)
	}
	for _, s := range []string{err.Error(), res.String()} {
		if strings.Contains(s, "97531864") || (res.PUK != "" && strings.Contains(s, res.PUK)) {
			t.Fatalf("a secret leaks: %q", s)
		}
	}
}

func TestProvisionRefusesAShortPIN(t *testing.T) {
	_, err := ProvisionPIV(context.Background(), &fakeDaemon{}, &fakeToken{}, ProvisionOptions{User: "alice", PIN: "123"})
	if err == nil || strings.Contains(err.Error(), "123") {
		t.Fatalf("error %v", err)
	}
}

// TestAKeyTheDaemonWouldRefuseIsNeverTouched: the daemon's pre-flight
// refusal stops provisioning before the reset, the new management key and
// PIN: the key is as it was, and the enrolment opened for it is closed.
func TestAKeyTheDaemonWouldRefuseIsNeverTouched(t *testing.T) {
	refusal := &api.Problem{Status: 400, Detail: "device: Yubico key 42 belongs to another user"}
	d := &fakeDaemon{preflightErr: refusal}
	tok := &fakeToken{}
	_, err := ProvisionPIV(context.Background(), d, tok, ProvisionOptions{User: "dave", PIN: "97531864", Reset: true})
	if !errors.Is(err, ErrPreflight) || !strings.Contains(err.Error(), "belongs to another user") {
		t.Fatalf("error %v", err)
	}
	if len(tok.steps) != 0 || len(d.cancelled) != 1 {
		t.Fatalf("the key went through %v; enrolments cancelled %v", tok.steps, d.cancelled)
	}
}

// TestARefusedCompletionPutsTheKeyBack: when the daemon refuses the
// completed enrolment, the key is reset to factory settings and the
// operator is told the next run needs no --reset; when the answer is lost,
// the key is left alone (the factor may exist).
func TestARefusedCompletionPutsTheKeyBack(t *testing.T) {
	tests := []struct {
		name     string
		err      error
		restored bool
	}{
		{"a policy refusal", &api.Problem{Status: 422, Detail: "PIN policy never is not accepted"}, true},
		{"no answer", errors.New("connection reset by peer"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := &fakeToken{}
			tok.PIVToken = setUpToken{}
			_, err := ProvisionPIV(context.Background(), &fakeDaemon{completeErr: tt.err}, tok, ProvisionOptions{User: "dave", PIN: "97531864"})
			var re *RefusedError
			restored := errors.As(err, &re) && re.Restored
			if restored != tt.restored || (tok.steps[len(tok.steps)-1] == "reset") != tt.restored {
				t.Fatalf("error %v; steps %v", err, tok.steps)
			}
			if tt.restored && (strings.Contains(err.Error(), "with --reset") || !strings.Contains(err.Error(), "without --reset")) {
				t.Fatalf("the advice is wrong: %v", err)
			}
		})
	}
}

// setUpToken answers the steps after the PIN for TestARefusedCompletion.
type setUpToken struct{ PIVToken }

func (setUpToken) GenerateKey([]byte, KeySpec) (crypto.PublicKey, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	return k.Public(), nil
}
func (setUpToken) Attest(string) (*x509.Certificate, *x509.Certificate, error) {
	c := &x509.Certificate{Raw: []byte{1}}
	return c, c, nil
}
func (setUpToken) SignDigest(string, crypto.PublicKey, string, []byte) ([]byte, error) {
	return []byte{1}, nil
}
