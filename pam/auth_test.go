package pam

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/api/client"
)

// fakeKeyfleet answers as keyfleetd would, from fixed answers.
type fakeKeyfleet struct {
	status   api.MFAStatus
	statErr  error
	factors  []api.VerificationFactor
	beginErr error
	ok       bool
	finished []api.FinishVerify
}

func (f *fakeKeyfleet) MFAStatus(context.Context, string) (api.MFAStatus, error) {
	return f.status, f.statErr
}
func (f *fakeKeyfleet) BeginVerify(context.Context, api.BeginVerify) (api.Verification, error) {
	return api.Verification{ID: "ver_1", Factors: f.factors}, f.beginErr
}
func (f *fakeKeyfleet) FinishVerify(_ context.Context, in api.FinishVerify) (api.VerifyResult, error) {
	f.finished = append(f.finished, in)
	return api.VerifyResult{OK: f.ok}, nil
}
func (f *fakeKeyfleet) FirstLoginPass(context.Context, string) (api.FirstLoginPass, error) {
	return api.FirstLoginPass{IssuedPass: api.IssuedPass{Code: "kfp-aaaaa-bbbbb-ccccc-ddddd"}, WelcomeURL: "https://kf/welcome"}, nil
}

// script is a conversation that answers prompts in turn and keeps all.
type script struct {
	answers []string
	said    []string
}

func (s *script) Prompt(_ bool, text string) (string, error) {
	s.said = append(s.said, "? "+text)
	if len(s.answers) == 0 {
		return "", ErrNoAnswer
	}
	a := s.answers[0]
	s.answers = s.answers[1:]
	return a, nil
}
func (s *script) Info(text string) error  { s.said = append(s.said, "i "+text); return nil }
func (s *script) Error(text string) error { s.said = append(s.said, "! "+text); return nil }

var phone = api.VerificationFactor{FactorID: "fac_1", Kind: "totp", Label: "Phone\x1b[2J", Inputs: []string{"code"}}

func TestAuthenticateDecides(t *testing.T) {
	down := &client.TransportError{Server: "https://kf", Reason: "connection refused", Err: errors.New("refused")}
	grace := time.Date(2027, 1, 2, 15, 4, 0, 0, time.UTC)
	cases := []struct {
		name    string
		kf      fakeKeyfleet
		cfg     Config
		answers []string
		want    Result
		says    string
	}{
		{"the right code lets in", fakeKeyfleet{status: api.MFAStatus{ActiveFactors: []api.Factor{{}}}, factors: []api.VerificationFactor{phone}, ok: true},
			Config{}, []string{"123456"}, Success, "? keyfleet code from Phone[2J (totp): "},
		{"a wrong code is refused", fakeKeyfleet{status: api.MFAStatus{ActiveFactors: []api.Factor{{}}}, factors: []api.VerificationFactor{phone}},
			Config{}, []string{"654321"}, AuthErr, "! Sign-in refused: wrong code."},
		{"no answer is a refusal", fakeKeyfleet{status: api.MFAStatus{ActiveFactors: []api.Factor{{}}}, factors: []api.VerificationFactor{phone}, ok: true},
			Config{}, nil, AuthErr, ""},
		{"only a security key cannot answer a prompt", fakeKeyfleet{status: api.MFAStatus{ActiveFactors: []api.Factor{{}}},
			factors: []api.VerificationFactor{{FactorID: "fac_2", Kind: "fido2"}}}, Config{}, nil, AuthErr, "cannot answer a typed prompt"},
		{"not required yet lets in without a prompt", fakeKeyfleet{status: api.MFAStatus{Status: "compliant"}}, Config{}, nil, Success, ""},
		{"within the deadline lets in with a warning", fakeKeyfleet{status: api.MFAStatus{MustEnrol: true, Status: "grace", GraceUntil: &grace}},
			Config{}, nil, Success, "i Enrol a second factor before 15:04 UTC on 2 Jan 2027."},
		{"past the deadline is refused with a pass", fakeKeyfleet{status: api.MFAStatus{MustEnrol: true, Status: "non_compliant", NextSteps: []string{"Enrol a TOTP app."}}},
			Config{FirstLogin: true}, nil, AuthErr, "Enrol a TOTP app. To enrol, open https://kf/welcome and enter the access pass kfp-aaaaa-bbbbb-ccccc-ddddd"},
		{"keyfleetd down fails closed", fakeKeyfleet{statErr: down}, Config{}, nil, AuthInfoUnavail, "keyfleet cannot be reached"},
		{"keyfleetd down lets in a fallback group", fakeKeyfleet{statErr: down}, Config{FallbackGroups: []string{"wheel", "netadmins"}}, nil, Success, "member of netadmins"},
		{"a revoked host token fails closed", fakeKeyfleet{statErr: &api.Problem{Type: "/problems/token-revoked", Status: 401}}, Config{}, nil, AuthInfoUnavail, "cannot be reached"},
		{"a locked user is told", fakeKeyfleet{status: api.MFAStatus{ActiveFactors: []api.Factor{{}}, LockedUntil: &grace},
			beginErr: &api.Problem{Type: "/problems/locked", Status: 429}}, Config{}, nil, AuthErr, "locked until 15:04 UTC"},
		{"an unknown user is refused", fakeKeyfleet{statErr: &api.Problem{Type: "/problems/not-found", Status: 404}}, Config{}, nil, UserUnknown, "does not know alice"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			conv := &script{answers: tc.answers}
			a := &Authenticator{Config: tc.cfg, Client: &tc.kf, Conv: conv, Log: slog.New(slog.DiscardHandler),
				InGroup: func(user, group string) (bool, error) { return group == "netadmins", nil }}
			a.Config.Timeout = time.Second
			got := a.Authenticate(context.Background(), Login{User: "alice", Service: "sshd"})
			said := strings.Join(conv.said, "\n")
			if got != tc.want || !strings.Contains(said, tc.says) {
				t.Fatalf("got %s, said:\n%s\nwant %s, saying %q", got, said, tc.want, tc.says)
			}
		})
	}
}

func TestTheWireCarriesPromptsAndAnswers(t *testing.T) {
	// The module's side: who signs in, then an answer to the one prompt.
	in := strings.NewReader("U 5\nalice\nS 4\nsshd\nR 9\n192.0.2.1\nT 0\n\nE 0\n\nA 6\n123456\n")
	var out bytes.Buffer
	w := newWire(in, &out)
	login, err := w.readLogin()
	if err != nil || login != (Login{User: "alice", Service: "sshd", RHost: "192.0.2.1"}) {
		t.Fatalf("%+v %v", login, err)
	}
	got, err := w.Prompt(false, "code: ")
	if err != nil || got != "123456" {
		t.Fatalf("%q %v", got, err)
	}
	w.Error("two\nlines")
	w.done(Success)
	if want := "P 6\ncode: \nM 9\ntwo\nlines\nD 7\nsuccess\n"; out.String() != want {
		t.Fatalf("sent %q, want %q", out.String(), want)
	}
	for _, bad := range []string{"U x\nalice\n", "U 99999999\n", "U 5\nali", "Z 0\n\n"} {
		if _, err := newWire(strings.NewReader(bad), io.Discard).readLogin(); err == nil {
			t.Errorf("%q was read as a login", bad)
		}
	}
}

func TestArgumentsAreCheckedAndTheTokenMustBeRootsAlone(t *testing.T) {
	if _, err := ParseArgs([]string{"url=http://kf.example"}); err == nil {
		t.Fatal("plain http accepted")
	}
	if _, err := ParseArgs([]string{"url=https://kf.example", "fallbak_group=wheel"}); err == nil || !strings.Contains(err.Error(), "fallbak_group") {
		t.Fatalf("a misspelt argument: %v", err)
	}
	c, err := ParseArgs([]string{"url=https://kf.example", "fallback_group=wheel,ops", "first_login", "timeout=2s"})
	if err != nil || len(c.FallbackGroups) != 2 || !c.FirstLogin || c.Timeout != 2*time.Second || c.TokenFile != DefaultTokenFile {
		t.Fatalf("%+v %v", c, err)
	}
	dir := t.TempDir()
	tok := filepath.Join(dir, "t")
	os.WriteFile(tok, []byte("kf_secret\n"), 0o640)
	if _, err := readToken(tok); err == nil {
		t.Fatal("a token file the group can read was accepted")
	}
	os.Chmod(tok, 0o600)
	if os.Geteuid() == 0 {
		if got, err := readToken(tok); err != nil || got != "kf_secret" {
			t.Fatalf("%q %v", got, err)
		}
		os.Chown(tok, 1, 1)
		if _, err := readToken(tok); err == nil {
			t.Fatal("a token file that is not root's was accepted")
		}
	}
}

func TestTheCodeAndThePassStayOutOfTheLog(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	kf := &fakeKeyfleet{status: api.MFAStatus{ActiveFactors: []api.Factor{{}}}, factors: []api.VerificationFactor{phone}}
	a := &Authenticator{Config: Config{Timeout: time.Second}, Client: kf, Conv: &script{answers: []string{"482913"}}, Log: log}
	a.Authenticate(context.Background(), Login{User: "alice"})
	a = &Authenticator{Config: Config{Timeout: time.Second, FirstLogin: true}, Client: &fakeKeyfleet{status: api.MFAStatus{MustEnrol: true, Status: "non_compliant"}},
		Conv: &script{}, Log: log}
	a.Authenticate(context.Background(), Login{User: "newbie"})
	if strings.Contains(logs.String(), "482913") || strings.Contains(logs.String(), "kfp-") {
		t.Fatalf("the log holds a code or a pass:\n%s", logs.String())
	}
	if len(kf.finished) != 1 || !strings.Contains(string(kf.finished[0].Response), "482913") {
		t.Fatal("the code did not reach keyfleetd")
	}
}
