package agent

import (
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"strings"
	"testing"

	"github.com/keyfleet/keyfleet/api"
)

// fakeToken fails at one step, to show what the operator sees.
type fakeToken struct {
	PIVToken
	failSetPIN error
}

func (f *fakeToken) Info() (DeviceInfo, error)       { return DeviceInfo{Serial: 1}, nil }
func (f *fakeToken) IsFactoryFresh() (bool, error)   { return true, nil }
func (f *fakeToken) SetManagementKey([]byte) error   { return nil }
func (f *fakeToken) SetPIN(_, _ string) error        { return f.failSetPIN }
func (f *fakeToken) SetPUK(_, _ string) error        { return nil }
func (f *fakeToken) StoreManagementKey([]byte) error { return nil }
func (f *fakeToken) Attest(string) (*x509.Certificate, *x509.Certificate, error) {
	return nil, nil, errors.New("not reached")
}
func (f *fakeToken) GenerateKey([]byte, KeySpec) (crypto.PublicKey, error) {
	return nil, errors.New("not reached")
}

type fakeDaemon struct{}

func (fakeDaemon) CreateEnrolment(context.Context, api.CreateEnrolment) (api.Enrolment, error) {
	return api.Enrolment{ID: "enr_1", Params: []byte(`{"slot":"9a","algorithm":"EC-P256","pin_policy":"once","touch_policy":"always"}`)}, nil
}

func (fakeDaemon) CompleteEnrolment(context.Context, string, api.CompleteEnrolment) (api.Factor, error) {
	return api.Factor{}, errors.New("not reached")
}

func TestProvisionErrorsCarryNoSecret(t *testing.T) {
	tok := &fakeToken{failSetPIN: &WrongPINError{Retries: 2}}
	res, err := ProvisionPIV(context.Background(), fakeDaemon{}, tok, ProvisionOptions{User: "alice", PIN: "97531864"})
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
	_, err := ProvisionPIV(context.Background(), fakeDaemon{}, &fakeToken{}, ProvisionOptions{User: "alice", PIN: "123"})
	if err == nil || strings.Contains(err.Error(), "123") {
		t.Fatalf("error %v", err)
	}
}
