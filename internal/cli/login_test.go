package cli_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/api/client/clienttest"
	"github.com/keyfleet/keyfleet/internal/cli"
)

// loggedOut returns an environment with only KEYFLEET_CONFIG set, and the
// paths of a token file and the CA file.
func loggedOut(t *testing.T) (e *env, tokenFile, ca string) {
	e = newEnv(t)
	e.srv.Handle("GET /v1/me", clienttest.JSON(200, api.Me{User: api.User{ID: "usr_1", Username: "root"}, Roles: []string{"admin"}}))
	ca = e.vars[cli.EnvCA]
	e.vars = map[string]string{cli.EnvConfig: e.vars[cli.EnvConfig]}
	tokenFile = filepath.Join(t.TempDir(), "admin.token")
	if err := os.WriteFile(tokenFile, []byte(clienttest.Token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return e, tokenFile, ca
}

func TestLoginSavesAConfigThatLaterCommandsUse(t *testing.T) {
	e, tokenFile, ca := loggedOut(t)
	r := e.run("login", "--server", e.srv.URL, "--token-file", tokenFile, "--ca", ca)
	if r.code != 0 || !strings.Contains(r.stdout, "Logged in to "+e.srv.URL+" as root (roles: admin)") {
		t.Fatalf("login: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	path := e.vars[cli.EnvConfig]
	assertMode(t, path, 0o600)
	assertMode(t, filepath.Dir(path), 0o700)
	var cfg map[string]string
	b, _ := os.ReadFile(path)
	if err := json.Unmarshal(b, &cfg); err != nil || cfg["server"] != e.srv.URL || cfg["token"] != clienttest.Token ||
		cfg["ca_pem"] != string(e.srv.CAPEM) {
		t.Fatalf("config = %s (%v)", b, err)
	}
	if r := e.run("whoami"); r.code != 0 || !strings.Contains(r.stdout, "root (usr_1)") {
		t.Fatalf("whoami after login: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if strings.Contains(r.stdout+r.stderr, clienttest.Token) {
		t.Fatal("login printed the token")
	}
	if r := e.run("logout"); r.code != 0 {
		t.Fatalf("logout: exit %d %s", r.code, r.stderr)
	}
	if r := e.run("whoami"); r.code != cli.ExitAuth {
		t.Fatalf("whoami after logout: exit %d", r.code)
	}
}

func TestLoginRefusals(t *testing.T) {
	tests := []struct {
		name  string
		args  func(url, tokenFile, ca string) []string
		stdin string
		code  int
		want  string
	}{
		{"a wrong token is refused and nothing is saved", func(u, _, ca string) []string {
			return []string{"login", "--server", u, "--token-file", "-", "--ca", ca}
		}, "not-the-token", cli.ExitAuth, "sign in again"},
		{"an empty token file is refused", func(u, _, ca string) []string {
			return []string{"login", "--server", u, "--token-file", "-", "--ca", ca}
		}, "\n", cli.ExitError, "is empty"},
		{"a missing --ca gives the server's fingerprint", func(u, tf, _ string) []string {
			return []string{"login", "--server", u, "--token-file", tf}
		}, "", cli.ExitUnreachable, "its certificate (SHA-256 "},
		{"a missing --server is a usage error", func(_, tf, ca string) []string {
			return []string{"login", "--token-file", tf, "--ca", ca}
		}, "", cli.ExitUsage, "--server is required"},
		{"plain http is a usage error", func(_, tf, ca string) []string {
			return []string{"login", "--server", "http://localhost:8443", "--token-file", tf, "--ca", ca}
		}, "", cli.ExitUsage, "scheme must be https"},
		{"a CA file that is not PEM is refused", func(u, tf, _ string) []string {
			return []string{"login", "--server", u, "--token-file", tf, "--ca", tf}
		}, "", cli.ExitError, "holds no PEM certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, tokenFile, ca := loggedOut(t)
			r := e.runIn(tt.stdin, tt.args(e.srv.URL, tokenFile, ca)...)
			if r.code != tt.code || !strings.Contains(r.stderr, tt.want) {
				t.Fatalf("exit %d, stderr %q; want %d, %q", r.code, r.stderr, tt.code, tt.want)
			}
			if _, err := os.Stat(e.vars[cli.EnvConfig]); !os.IsNotExist(err) {
				t.Fatalf("a config was saved: %v", err)
			}
			if strings.Contains(r.stderr+r.stdout, clienttest.Token) || strings.Contains(r.stderr, "not-the-token") {
				t.Fatal("a token leaked into the output")
			}
		})
	}
}

func assertMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != want {
		t.Fatalf("%s: mode %v (%v), want %v", path, st.Mode().Perm(), err, want)
	}
}
