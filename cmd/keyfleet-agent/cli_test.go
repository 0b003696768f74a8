package main

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/keyfleet/keyfleet/agent"
	"github.com/keyfleet/keyfleet/internal/cli"
)

// touchedOpener fails the test if anything asks PC/SC for a key.
type touchedOpener struct{ t *testing.T }

func (o touchedOpener) Readers() ([]string, error) {
	o.t.Fatal("help touched PC/SC (Readers)")
	return nil, nil
}

func (o touchedOpener) Open(string) (agent.PIVToken, error) {
	o.t.Fatal("help touched PC/SC (Open)")
	return nil, nil
}

func runAgent(t *testing.T, env map[string]string, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &out, &errb, func(k string) string { return env[k] })
	return out.String(), errb.String(), code
}

func TestHelpPrintsWithoutTouchingTheKeys(t *testing.T) {
	saved := opener
	opener = touchedOpener{t}
	t.Cleanup(func() { opener = saved })
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"devices -h", []string{"devices", "-h"}, "keyfleet-agent devices [flags]"},
		{"devices --help", []string{"devices", "--help"}, "It needs pcscd running"},
		{"help devices", []string{"help", "devices"}, "keyfleet-agent devices [flags]"},
		{"provision --help", []string{"provision", "--help"}, "--pin-file string"},
		{"enroll --help", []string{"enroll", "--help"}, "--code string"},
		{"the enrol alias", []string{"enrol", "--help"}, "Aliases:"},
		{"no command at all", nil, "Available Commands:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, code := runAgent(t, nil, tt.args...)
			if code != exitOK || !strings.Contains(out, tt.want) {
				t.Fatalf("exit %d, want %q in: %s %s", code, tt.want, out, errOut)
			}
		})
	}
}

func TestCommandLineMistakesAreUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"a single-dash long flag", []string{"provision", "-user", "alice"}, "unknown shorthand flag"},
		{"an unknown flag", []string{"verify", "--usr", "alice"}, "unknown flag: --usr"},
		{"a misspelt command", []string{"provison"}, `did you mean "provision"?`},
		{"provision for nobody", []string{"provision"}, "provision needs --user NAME or --batch users.csv"},
		{"provision for a user and a batch", []string{"provision", "--user", "a", "--batch", "b.csv"}, "provision needs --user NAME or --batch"},
		{"provision of nothing", []string{"provision", "--user", "a", "--piv=false"}, "nothing to provision"},
		{"two PIN sources", []string{"provision", "--user", "a", "--pin-file", "p", "--ask-pin"}, "not both"},
		{"verify for nobody", []string{"verify"}, "verify needs --user"},
		{"a positional argument", []string{"devices", "now"}, `unexpected argument "now"`},
		{"no server anywhere", []string{"activate"}, "give --server URL, set KEYFLEET_SERVER, or run keyfleet login"},
	}
	env := map[string]string{cli.EnvConfig: filepath.Join(t.TempDir(), "none.json")}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, errOut, code := runAgent(t, env, tt.args...)
			if code != exitUsage || !strings.Contains(errOut, tt.want) || !strings.Contains(errOut, "--help'") {
				t.Fatalf("exit %d, want %q and a pointer to --help in: %s", code, tt.want, errOut)
			}
		})
	}
}

// recorder is a keyfleetd stand-in that records the tokens it was sent.
type recorder struct {
	srv    *httptest.Server
	tokens atomic.Value // string: the last Authorization header
	hits   atomic.Int32
}

func newRecorder(t *testing.T) *recorder {
	r := &recorder{}
	r.tokens.Store("")
	r.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.hits.Add(1)
		r.tokens.Store(req.Header.Get("Authorization"))
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(http.StatusForbidden)
		w.Write([]byte(`{"type":"/problems/forbidden","title":"forbidden","status":403}`))
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *recorder) caFile(t *testing.T) string {
	p := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(p, pemOf(r.srv), 0o600)
	return p
}

// saveLogin writes a configuration file as keyfleet login does.
func saveLogin(t *testing.T, server, token string, ca []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.json")
	b, _ := json.Marshal(map[string]string{"server": server, "token": token, "ca_pem": string(ca)})
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestTheAgentUsesTheLoginKeyfleetSaved(t *testing.T) {
	r := newRecorder(t)
	cfg := saveLogin(t, r.srv.URL, "kf_saved_token", pemOf(r.srv))
	_, errOut, code := runAgent(t, map[string]string{cli.EnvConfig: cfg}, "activate")
	if code != exitError || r.hits.Load() == 0 || r.tokens.Load() != "Bearer kf_saved_token" {
		t.Fatalf("exit %d, keyfleetd saw %q: %s", code, r.tokens.Load(), errOut)
	}
	if strings.Contains(errOut, "kf_saved_token") {
		t.Fatalf("the token was printed: %s", errOut)
	}
}

func TestTokenSourcesInOrder(t *testing.T) {
	r := newRecorder(t)
	flagFile := filepath.Join(t.TempDir(), "token")
	os.WriteFile(flagFile, []byte("kf_from_flag\n"), 0o600)
	envFile := filepath.Join(t.TempDir(), "token")
	os.WriteFile(envFile, []byte("kf_from_env_file\n"), 0o600)
	cfg := saveLogin(t, r.srv.URL, "kf_saved_token", pemOf(r.srv))
	tests := []struct {
		name  string
		env   map[string]string
		flags []string
		want  string
	}{
		{"--token-file beats everything", map[string]string{cli.EnvToken: "kf_from_env"}, []string{"--token-file", flagFile}, "Bearer kf_from_flag"},
		{"KEYFLEET_TOKEN beats a token file in the environment", map[string]string{cli.EnvToken: "kf_from_env", EnvTokenFile: envFile}, nil, "Bearer kf_from_env"},
		{"KEYFLEET_TOKEN_FILE beats the saved login", map[string]string{EnvTokenFile: envFile}, nil, "Bearer kf_from_env_file"},
		{"the saved login last", nil, nil, "Bearer kf_saved_token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{cli.EnvConfig: cfg}
			for k, v := range tt.env {
				env[k] = v
			}
			_, errOut, _ := runAgent(t, env, append([]string{"activate"}, tt.flags...)...)
			if got := r.tokens.Load(); got != tt.want {
				t.Fatalf("keyfleetd saw %q, want %q: %s", got, tt.want, errOut)
			}
		})
	}
}

// An operator logged in to the real keyfleetd with keyfleet login. A
// phishing message asks them to run the agent against another address:
// the saved token must not go there.
func TestASavedTokenIsNeverSentToAnotherServer(t *testing.T) {
	real := newRecorder(t)
	evil := newRecorder(t)
	cfg := saveLogin(t, real.srv.URL, "kf_saved_token", pemOf(real.srv))
	env := map[string]string{cli.EnvConfig: cfg}
	for _, how := range []struct {
		name string
		env  map[string]string
		args []string
	}{
		{"with --server", nil, []string{"--server", evil.srv.URL, "--ca", evil.caFile(t)}},
		{"with KEYFLEET_SERVER", map[string]string{cli.EnvServer: evil.srv.URL, cli.EnvCA: evil.caFile(t)}, nil},
	} {
		t.Run(how.name, func(t *testing.T) {
			e := map[string]string{}
			for k, v := range env {
				e[k] = v
			}
			for k, v := range how.env {
				e[k] = v
			}
			_, errOut, code := runAgent(t, e, append([]string{"verify", "--user", "alice"}, how.args...)...)
			if code != exitError || !strings.Contains(errOut, "no token") {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			if evil.hits.Load() != 0 || evil.tokens.Load() != "" {
				t.Fatalf("the other server was called with %q", evil.tokens.Load())
			}
		})
	}
}

func pemOf(s *httptest.Server) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.Certificate().Raw})
}

func TestTheAgentCompletesItsCommandsAndFlags(t *testing.T) {
	saved := opener
	opener = touchedOpener{t}
	t.Cleanup(func() { opener = saved })
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"a bash script", []string{"completion", "bash"}, "__start_keyfleet-agent"},
		{"a zsh script", []string{"completion", "zsh"}, "#compdef keyfleet-agent"},
		{"a command", []string{"__complete", "prov"}, "provision"},
		{"a flag", []string{"__complete", "provision", "--pin"}, "--pin-file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, code := runAgent(t, nil, tt.args...)
			if code != exitOK || !strings.Contains(out, tt.want) {
				t.Fatalf("exit %d, want %q in: %.300s %s", code, tt.want, out, errOut)
			}
		})
	}
}
