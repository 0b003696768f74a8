package pam

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
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
	begun    []api.BeginVerify
	// push is what a begin naming a push factor answers; pushRes,
	// pushErr what finishing it does.
	push    api.VerificationFactor
	pushErr error
	pushRes api.VerifyResult
	// recorded are the decisions sent; recordErr is the answer to each.
	recorded  []api.LoginDecision
	recordErr error
}

func (f *fakeKeyfleet) MFAStatus(context.Context, string) (api.MFAStatus, error) {
	return f.status, f.statErr
}
func (f *fakeKeyfleet) BeginVerify(_ context.Context, in api.BeginVerify) (api.Verification, error) {
	f.begun = append(f.begun, in)
	if in.FactorID != "" && in.FactorID == f.push.FactorID {
		return api.Verification{ID: "ver_push", Factors: []api.VerificationFactor{f.push}}, f.pushErr
	}
	return api.Verification{ID: "ver_1", Factors: f.factors}, f.beginErr
}
func (f *fakeKeyfleet) FinishVerify(_ context.Context, in api.FinishVerify) (api.VerifyResult, error) {
	f.finished = append(f.finished, in)
	if in.ID == "ver_push" {
		return f.pushRes, f.pushErr
	}
	return api.VerifyResult{OK: f.ok}, nil
}
func (f *fakeKeyfleet) RecordLoginDecision(_ context.Context, in api.LoginDecision) (api.LoginDecision, error) {
	if f.recordErr != nil {
		return api.LoginDecision{}, f.recordErr
	}
	f.recorded = append(f.recorded, in)
	return in, nil
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

// withTOTP is the status of a user with one TOTP factor.
var withTOTP = api.MFAStatus{ActiveFactors: []api.Factor{{ID: "fac_1", Kind: "totp"}}, AllowedKinds: []string{"totp", "push", "fido2"}}

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
		{"the right code lets in", fakeKeyfleet{status: withTOTP, factors: []api.VerificationFactor{phone}, ok: true},
			Config{}, []string{"123456"}, Success, "? keyfleet code from Phone[2J (totp): "},
		{"a wrong code is refused", fakeKeyfleet{status: withTOTP, factors: []api.VerificationFactor{phone}},
			Config{}, []string{"654321"}, AuthErr, "! Sign-in refused: wrong code."},
		{"no answer is a refusal", fakeKeyfleet{status: withTOTP, factors: []api.VerificationFactor{phone}, ok: true},
			Config{}, nil, AuthErr, ""},
		{"only a security key cannot answer a prompt", fakeKeyfleet{status: api.MFAStatus{ActiveFactors: []api.Factor{{ID: "fac_2", Kind: "fido2"}}, AllowedKinds: []string{"fido2"}},
			factors: []api.VerificationFactor{{FactorID: "fac_2", Kind: "fido2"}}}, Config{}, nil, AuthErr, "A security key cannot be asked from a terminal or an SSH session"},
		{"not required yet lets in without a prompt", fakeKeyfleet{status: api.MFAStatus{Status: "compliant"}}, Config{}, nil, Success, ""},
		{"within the deadline lets in with a warning", fakeKeyfleet{status: api.MFAStatus{MustEnrol: true, Status: "grace", GraceUntil: &grace}},
			Config{}, nil, Success, "i Enrol a second factor before 15:04 UTC on 2 Jan 2027."},
		{"past the deadline is refused with a pass", fakeKeyfleet{status: api.MFAStatus{MustEnrol: true, Status: "non_compliant", NextSteps: []string{"Enrol a TOTP app."}}},
			Config{FirstLogin: true}, nil, AuthErr, "Enrol a TOTP app. To enrol, open https://kf/welcome and enter the access pass kfp-aaaaa-bbbbb-ccccc-ddddd"},
		{"keyfleetd down fails closed", fakeKeyfleet{statErr: down}, Config{}, nil, AuthInfoUnavail, "keyfleet cannot be reached"},
		{"keyfleetd down lets in a fallback group", fakeKeyfleet{statErr: down}, Config{FallbackGroups: []string{"wheel", "netadmins"}}, nil, Success, "member of netadmins"},
		{"a revoked host token fails closed", fakeKeyfleet{statErr: &api.Problem{Type: "/problems/token-revoked", Status: 401}}, Config{}, nil, AuthInfoUnavail, "cannot be reached"},
		{"a locked user is told", fakeKeyfleet{status: api.MFAStatus{ActiveFactors: []api.Factor{{Kind: "totp"}}, LockedUntil: &grace},
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
	for _, bad := range []string{"push_timeout=0s", "push_timeout=1h", "push_timeout=soon", "spool_dir=relative/spool"} {
		if _, err := ParseArgs([]string{"url=https://kf.example", bad}); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
	c, err := ParseArgs([]string{"url=https://kf.example", "fallback_group=wheel,ops", "first_login", "timeout=2s", "push_timeout=45s"})
	if err != nil || len(c.FallbackGroups) != 2 || !c.FirstLogin || c.Timeout != 2*time.Second || c.TokenFile != DefaultTokenFile ||
		c.PushTimeout != 45*time.Second || c.SpoolDir != DefaultSpoolDir {
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

func TestTheCodeThePassAndThePushNumberStayOutOfTheLog(t *testing.T) {
	var logs bytes.Buffer
	noTime := func(_ []string, a slog.Attr) slog.Attr { // the time could hold any two digits
		if a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug, ReplaceAttr: noTime}))
	kf := &fakeKeyfleet{status: withTOTP, factors: []api.VerificationFactor{phone}}
	a := &Authenticator{Config: Config{Timeout: time.Second}, Client: kf, Conv: &script{answers: []string{"482913"}}, Log: log}
	a.Authenticate(context.Background(), Login{User: "alice"})
	a = &Authenticator{Config: Config{Timeout: time.Second, FirstLogin: true}, Client: &fakeKeyfleet{status: api.MFAStatus{MustEnrol: true, Status: "non_compliant"}},
		Conv: &script{}, Log: log}
	a.Authenticate(context.Background(), Login{User: "newbie"})
	push := &fakeKeyfleet{status: pushOnly, push: pushFound(time.Now().Add(time.Minute)), pushRes: api.VerifyResult{OK: true}}
	a = &Authenticator{Config: Config{Timeout: time.Second}, Client: push, Conv: &script{answers: []string{""}}, Log: log}
	if a.Authenticate(context.Background(), Login{User: "pushy"}) != Success || !strings.Contains(logs.String(), "push approved") {
		t.Fatalf("the push was not logged as approved:\n%s", logs.String())
	}
	// The number to pick is for the person at the sign-in screen only, and
	// the verification's id is its bearer's to finish.
	for _, secret := range []string{"482913", "kfp-", "47", "ver_push"} {
		if strings.Contains(logs.String(), secret) {
			t.Fatalf("the log holds %q:\n%s", secret, logs.String())
		}
	}
	if len(kf.finished) != 1 || !strings.Contains(string(kf.finished[0].Response), "482913") {
		t.Fatal("the code did not reach keyfleetd")
	}
}

// A push-capable user: Pixel is their push companion.
var (
	pixel     = api.Factor{ID: "fac_push", Kind: "push", Label: "Pixel"}
	pushFound = func(deadline time.Time) api.VerificationFactor {
		return api.VerificationFactor{FactorID: "fac_push", Kind: "push", OutOfBand: true, Deadline: &deadline,
			Prompt: json.RawMessage(`{"number":"47","device":"Pixel","message":"Open keyfleet on Pixel and pick 47."}`)}
	}
	pushOnly = api.MFAStatus{ActiveFactors: []api.Factor{pixel}, AllowedKinds: []string{"push", "totp"}}
)

// TestAPushDecidesTheSignIn walks what a user with a push companion sees:
// the push goes out only when it is the way they sign in (or they ask for
// it), the number to pick is shown before the prompt to press Enter, and
// the answer — approved, refused, or none in time — decides.
func TestAPushDecidesTheSignIn(t *testing.T) {
	now := time.Date(2027, 1, 2, 10, 42, 7, 0, time.UTC)
	soon, gone := now.Add(time.Minute), now.Add(-time.Second)
	both := api.MFAStatus{ActiveFactors: []api.Factor{{ID: "fac_1", Kind: "totp"}, pixel}, AllowedKinds: []string{"push", "totp"}}
	cases := []struct {
		name    string
		kf      fakeKeyfleet
		cfg     Config
		answers []string
		want    Result
		says    []string
		pushes  int // pushes begun
	}{
		{"a push-only user approves the number shown", fakeKeyfleet{status: pushOnly, push: pushFound(soon), pushRes: api.VerifyResult{OK: true}},
			Config{}, []string{""}, Success, []string{"i keyfleet sent a push to Pixel. Open keyfleet on Pixel and pick 47. Answer by 10:43:07 UTC.", "? Press Enter once you have answered on Pixel: "}, 1},
		{"a push refused on the companion refuses the sign-in", fakeKeyfleet{status: pushOnly, push: pushFound(soon), pushRes: api.VerifyResult{}},
			Config{}, []string{""}, AuthErr, []string{"! Sign-in refused: the push was not approved"}, 1},
		{"a push still waiting at push_timeout refuses", fakeKeyfleet{status: pushOnly, push: pushFound(soon), pushRes: api.VerifyResult{Pending: true}},
			Config{PushTimeout: 5 * time.Second}, []string{""}, AuthErr, []string{"Answer by 10:42:12 UTC", "! Sign-in refused: no answer to the push in time."}, 1},
		{"a push past its deadline refuses", fakeKeyfleet{status: pushOnly, push: pushFound(gone), pushRes: api.VerifyResult{}},
			Config{}, []string{""}, AuthErr, []string{"! Sign-in refused: no answer to the push in time."}, 1},
		{"no Enter is a refusal", fakeKeyfleet{status: pushOnly, push: pushFound(soon), pushRes: api.VerifyResult{OK: true}},
			Config{}, nil, AuthErr, nil, 1},
		{"a code or Enter: Enter sends the push", fakeKeyfleet{status: both, factors: []api.VerificationFactor{phone}, push: pushFound(soon), pushRes: api.VerifyResult{OK: true}},
			Config{}, []string{"", ""}, Success, []string{"? keyfleet code from Phone[2J (totp), or press Enter to send a push to Pixel (push): ", "pick 47"}, 1},
		{"a code or Enter: a code sends no push", fakeKeyfleet{status: both, factors: []api.VerificationFactor{phone}, push: pushFound(soon), ok: true},
			Config{}, []string{"123456"}, Success, []string{"or press Enter to send a push"}, 0},
		{"several factors are picked from a list", fakeKeyfleet{status: api.MFAStatus{ActiveFactors: []api.Factor{{ID: "fac_1", Kind: "totp"}, {ID: "fac_3", Kind: "totp"}, pixel}, AllowedKinds: []string{"push", "totp"}},
			factors: []api.VerificationFactor{phone, {FactorID: "fac_3", Kind: "totp", Label: "Tablet", Inputs: []string{"code"}}}, push: pushFound(soon), pushRes: api.VerifyResult{OK: true}},
			Config{}, []string{"3", ""}, Success, []string{"1) Phone[2J (totp) 2) Tablet (totp) 3) Pixel (push). Number: ", "pick 47"}, 1},
		{"a policy that does not accept push leaves nothing to answer with", fakeKeyfleet{status: api.MFAStatus{ActiveFactors: []api.Factor{pixel}, AllowedKinds: []string{"totp"}}},
			Config{}, nil, AuthErr, []string{"The policy does not accept push approvals for you."}, 0},
		{"too many pushes are refused with what to do", fakeKeyfleet{status: pushOnly, push: pushFound(soon), pushErr: &api.Problem{Type: "/problems/rate-limited", Status: 429}},
			Config{}, nil, AuthErr, []string{"too many pushes were sent to you recently"}, 1},
		{"pushes locked after This wasn't me are explained", fakeKeyfleet{status: pushOnly, push: pushFound(soon), pushErr: &api.Problem{Type: "/problems/locked", Status: 429}},
			Config{}, nil, AuthErr, []string{"pushes to you are locked"}, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			conv := &script{answers: tc.answers}
			a := &Authenticator{Config: tc.cfg, Client: &tc.kf, Conv: conv, Log: slog.New(slog.DiscardHandler), Host: "web01", Now: func() time.Time { return now }}
			a.Config.Timeout = time.Second
			got := a.Authenticate(context.Background(), Login{User: "alice", Service: "sshd", RHost: "192.0.2.7"})
			said := strings.Join(conv.said, "\n")
			for _, want := range tc.says {
				if !strings.Contains(said, want) {
					t.Errorf("did not say %q", want)
				}
			}
			var pushes []api.BeginVerify
			for _, b := range tc.kf.begun {
				if slices.Contains(b.Kinds, "push") || b.FactorID == "" && len(b.Kinds) == 0 {
					t.Errorf("a begin that may send every push: %+v", b)
				}
				if b.FactorID == pixel.ID {
					pushes = append(pushes, b)
				}
			}
			if got != tc.want || len(pushes) != tc.pushes {
				t.Fatalf("got %s after %d pushes, said:\n%s\nwant %s after %d", got, len(pushes), said, tc.want, tc.pushes)
			}
			if len(pushes) > 0 && (pushes[0].Application != "sshd on web01" || pushes[0].Address != "192.0.2.7") {
				t.Fatalf("the push describes the sign-in as %+v", pushes[0])
			}
		})
	}
}

func TestThePushWaitsNoLongerThanItsDeadlineOrPushTimeout(t *testing.T) {
	now := time.Date(2027, 1, 2, 10, 42, 7, 0, time.UTC)
	for _, tc := range []struct {
		timeout time.Duration
		want    string
	}{{0, "1m0s"}, {5 * time.Second, "5s"}, {2 * time.Minute, "1m0s"}} {
		kf := &fakeKeyfleet{status: pushOnly, push: pushFound(now.Add(time.Minute)), pushRes: api.VerifyResult{OK: true}}
		a := &Authenticator{Config: Config{Timeout: time.Second, PushTimeout: tc.timeout}, Client: kf, Conv: &script{answers: []string{""}},
			Log: slog.New(slog.DiscardHandler), Now: func() time.Time { return now }}
		if got := a.Authenticate(context.Background(), Login{User: "alice"}); got != Success || len(kf.finished) != 1 || kf.finished[0].Wait != tc.want {
			t.Fatalf("push_timeout %s: %s, finished %+v; want a wait of %s", tc.timeout, got, kf.finished, tc.want)
		}
	}
}

// TestEveryDecisionWithoutAVerificationIsRecorded: what the helper
// decides without a verification goes to keyfleetd's audit trail (a
// verification, right or wrong, records itself).
func TestEveryDecisionWithoutAVerificationIsRecorded(t *testing.T) {
	grace := time.Now().Add(time.Hour)
	cases := []struct {
		name    string
		kf      fakeKeyfleet
		cfg     Config
		answers []string
		want    string // outcome and reason; "" for no record
	}{
		{"not required yet", fakeKeyfleet{status: api.MFAStatus{Status: "compliant"}}, Config{}, nil, "allowed not_required"},
		{"within the deadline", fakeKeyfleet{status: api.MFAStatus{MustEnrol: true, Status: "grace", GraceUntil: &grace}}, Config{}, nil, "allowed grace"},
		{"past the deadline", fakeKeyfleet{status: api.MFAStatus{MustEnrol: true, Status: "non_compliant"}}, Config{}, nil, "refused must_enrol"},
		{"an unknown user", fakeKeyfleet{statErr: &api.Problem{Type: "/problems/not-found", Status: 404}}, Config{}, nil, "refused unknown_user"},
		{"an unknown user let in", fakeKeyfleet{statErr: &api.Problem{Type: "/problems/not-found", Status: 404}}, Config{AllowUnknown: true}, nil, "allowed allow_unknown"},
		{"only a security key", fakeKeyfleet{status: api.MFAStatus{ActiveFactors: []api.Factor{{Kind: "fido2"}}}, factors: []api.VerificationFactor{{FactorID: "fac_2", Kind: "fido2"}}},
			Config{}, nil, "refused no_factor_usable_here"},
		{"no answer to the prompt", fakeKeyfleet{status: withTOTP, factors: []api.VerificationFactor{phone}}, Config{}, nil, "refused no_answer"},
		{"a locked user", fakeKeyfleet{status: withTOTP, beginErr: &api.Problem{Type: "/problems/locked", Status: 429}}, Config{}, nil, "refused locked"},
		{"no answer to a push by push_timeout", fakeKeyfleet{status: pushOnly, push: pushFound(time.Now().Add(time.Minute)), pushRes: api.VerifyResult{Pending: true}},
			Config{PushTimeout: time.Second}, []string{""}, "refused push_timeout"},
		{"a right code records itself", fakeKeyfleet{status: withTOTP, factors: []api.VerificationFactor{phone}, ok: true}, Config{}, []string{"123456"}, ""},
		{"a wrong code records itself", fakeKeyfleet{status: withTOTP, factors: []api.VerificationFactor{phone}}, Config{}, []string{"123456"}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := &Authenticator{Config: tc.cfg, Client: &tc.kf, Conv: &script{answers: tc.answers}, Log: slog.New(slog.DiscardHandler), Host: "web01"}
			a.Config.Timeout = time.Second
			a.Authenticate(context.Background(), Login{User: "alice", Service: "sshd", RHost: "192.0.2.7"})
			var got []string
			for _, d := range tc.kf.recorded {
				got = append(got, d.Outcome+" "+d.Reason)
				if d.User != "alice" || d.Service != "sshd" || d.Host != "web01" || d.RemoteHost != "192.0.2.7" || d.ID == "" || d.OccurredAt != nil {
					t.Errorf("recorded %+v", d)
				}
			}
			if want := slices.DeleteFunc([]string{tc.want}, func(s string) bool { return s == "" }); !slices.Equal(got, want) {
				t.Fatalf("recorded %q, want %q", got, want)
			}
		})
	}
}

// TestDecisionsKeyfleetdCannotTakeWaitInTheSpool: while keyfleetd is down
// the fallback group's sign-in and the refusals are kept in the spool,
// with when they happened; the next sign-in that reaches keyfleetd sends
// them first, oldest first, and empties the spool.
func TestDecisionsKeyfleetdCannotTakeWaitInTheSpool(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("the spool must be root's: run the test as root (make test does)")
	}
	down := &client.TransportError{Server: "https://kf", Reason: "connection refused", Err: errors.New("refused")}
	spool := &Spool{Dir: filepath.Join(t.TempDir(), "spool")}
	clock := time.Date(2027, 1, 2, 10, 0, 0, 0, time.UTC)
	kf := &fakeKeyfleet{statErr: down, recordErr: down}
	a := &Authenticator{Config: Config{Timeout: time.Second, FallbackGroups: []string{"netadmins"}}, Client: kf, Conv: &script{}, Spool: spool,
		Log: slog.New(slog.DiscardHandler), InGroup: func(user, _ string) (bool, error) { return user == "root-ish", nil }, Now: func() time.Time { return clock }}
	for _, u := range []string{"root-ish", "bob"} {
		clock = clock.Add(time.Minute)
		a.Authenticate(context.Background(), Login{User: u, Service: "sshd"})
	}
	if names, _ := spool.names(); len(names) != 2 {
		t.Fatalf("the spool holds %v", names)
	}
	kf.statErr, kf.recordErr, kf.status = nil, nil, api.MFAStatus{Status: "compliant"}
	a.Authenticate(context.Background(), Login{User: "carol", Service: "sshd"})
	var got []string
	for _, d := range kf.recorded {
		at := ""
		if d.OccurredAt != nil {
			at = d.OccurredAt.Format("15:04")
		}
		got = append(got, strings.TrimSpace(d.User+" "+d.Outcome+" "+d.Reason+" "+at))
	}
	want := []string{"root-ish allowed fallback_group 10:01", "bob refused keyfleet_unreachable 10:02", "carol allowed not_required"}
	if !slices.Equal(got, want) {
		t.Fatalf("sent %q, want %q", got, want)
	}
	if names, _ := spool.names(); len(names) != 0 {
		t.Fatalf("the spool still holds %v", names)
	}
}

func TestTheSpoolRefusesAFolderOthersCouldWriteAndKeepsItsBounds(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("the spool must be root's: run the test as root (make test does)")
	}
	dir := filepath.Join(t.TempDir(), "spool")
	os.Mkdir(dir, 0o777)
	os.Chmod(dir, 0o777)
	s := &Spool{Dir: dir, Max: 2}
	d := api.LoginDecision{User: "alice", Outcome: "allowed", Reason: "fallback_group"}
	d.ID = newRecordID(time.Now())
	if err := s.Put(d); !errors.Is(err, ErrUnsafeSpool) {
		t.Fatalf("a folder everyone may write: %v", err)
	}
	// Someone put a record there to be sent with the host's token.
	os.WriteFile(filepath.Join(dir, "forged.json"), []byte(`{"user":"x","outcome":"allowed","reason":"grace"}`), 0o644)
	if _, err := s.Flush(context.Background(), 10, func(context.Context, api.LoginDecision) error { t.Fatal("sent from an unsafe spool"); return nil }, nil); !errors.Is(err, ErrUnsafeSpool) {
		t.Fatalf("flushing a folder everyone may write: %v", err)
	}
	os.Chmod(dir, 0o700)
	os.Remove(filepath.Join(dir, "forged.json"))
	for i := range 2 {
		d.ID = newRecordID(time.Now().Add(time.Duration(i) * time.Second))
		if err := s.Put(d); err != nil {
			t.Fatal(err)
		}
	}
	d.ID = newRecordID(time.Now())
	if err := s.Put(d); !errors.Is(err, ErrSpoolFull) {
		t.Fatalf("past Max: %v", err)
	}
	// A record keyfleetd refuses as bad input is dropped; one it cannot
	// take now stays, and stops the flush.
	os.WriteFile(filepath.Join(dir, "0-broken.json"), []byte("{"), 0o600)
	var dropped []string
	sent, err := s.Flush(context.Background(), 10, func(context.Context, api.LoginDecision) error { return errors.New("down") },
		func(name string, _ error) { dropped = append(dropped, name) })
	if names, _ := s.names(); sent != 0 || err == nil || len(names) != 2 || !slices.Equal(dropped, []string{"0-broken.json"}) {
		t.Fatalf("sent %d, %v; dropped %v; left %v", sent, err, dropped, names)
	}
}
