package fido2

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/keyfleet/keyfleet/agent"
	softfido2 "github.com/keyfleet/keyfleet/agent/fido2"
	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/plugins/sdk"
)

var ctx = context.Background()

const (
	rpID   = "keyfleet.test"
	origin = "https://keyfleet.test:8443"
)

var validAt = time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)

func random(t testing.TB, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func newKind(t testing.TB, cfg Config) *Factor {
	t.Helper()
	if cfg.RPID == "" {
		cfg.RPID = rpID
	}
	if cfg.Origins == nil {
		cfg.Origins = []string{origin}
	}
	if cfg.Now == nil {
		cfg.Now = func() time.Time { return validAt }
	}
	f, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func newSoft(t testing.TB, ca *softfido2.CA, o softfido2.SoftOptions) *softfido2.Soft {
	t.Helper()
	o.CA = ca
	if o.Path == "" {
		o.Path = filepath.Join(t.TempDir(), "key.json")
	}
	k, err := softfido2.NewSoft(o)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

var alice = sdk.User{ID: "usr_alice", Username: "alice", DisplayName: "Alice"}

// enrolment is one begun enrolment.
type enrolment struct {
	challenge []byte
	begun     sdk.BeginEnrolResponse
	opts      api.FIDO2CreationOptions
}

func begin(t testing.TB, f *Factor, options map[string]string) enrolment {
	t.Helper()
	e := enrolment{challenge: random(t, 32)}
	var err error
	if e.begun, err = f.BeginEnrol(ctx, sdk.BeginEnrolRequest{User: alice, Challenge: e.challenge, Options: options}); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(e.begun.Params[api.FIDO2ParamOptions]), &e.opts); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e enrolment) finish(f *Factor, reg api.FIDO2Registration) (sdk.FinishEnrolResponse, error) {
	body, _ := json.Marshal(reg)
	return f.FinishEnrol(ctx, sdk.FinishEnrolRequest{User: alice, Challenge: e.challenge, State: e.begun.State, Response: body})
}

// enrolSoft registers key with f and returns the factor's state.
func enrolSoft(t testing.TB, f *Factor, key agent.FIDO2Token) []byte {
	t.Helper()
	e := begin(t, f, nil)
	reg, err := agent.Register(key, e.opts, agent.Ceremony{Origin: origin})
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.finish(f, reg)
	if err != nil {
		t.Fatal(err)
	}
	return res.State
}

// assert runs one verification of key against state, with a change to
// the assertion before it is sent.
func assert(t testing.TB, f *Factor, state []byte, key agent.FIDO2Token, c agent.Ceremony, change func(*api.FIDO2Assertion)) sdk.FinishVerifyResponse {
	t.Helper()
	begun, err := f.BeginVerify(ctx, sdk.BeginVerifyRequest{State: state, Challenge: random(t, 32)})
	if err != nil {
		t.Fatal(err)
	}
	var opts api.FIDO2RequestOptions
	if err := json.Unmarshal(begun.Prompt, &opts); err != nil {
		t.Fatal(err)
	}
	if c.Origin == "" {
		c.Origin = origin
	}
	a, err := agent.Authenticate(key, opts, c)
	if err != nil {
		t.Fatal(err)
	}
	if change != nil {
		change(&a)
	}
	body, _ := json.Marshal(a)
	res, err := f.FinishVerify(ctx, sdk.FinishVerifyRequest{State: state, Session: begun.Session, Response: body})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func roots(ca ...*softfido2.CA) []*x509.Certificate {
	var out []*x509.Certificate
	for _, c := range ca {
		out = append(out, c.Root())
	}
	return out
}
