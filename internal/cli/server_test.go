package cli_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/api/client/clienttest"
	"github.com/keyfleet/keyfleet/internal/cli"
)

// An operator logged in to the real keyfleetd with keyfleet login. A
// message asks them to run keyfleet against another address
// (KEYFLEET_SERVER=https://evil…): the token saved for the real server
// must not go there. keyfleet says what to do instead, and a token given
// for the other server explicitly is the only one it sends there.
func TestASavedTokenGoesOnlyToTheServerThatIssuedIt(t *testing.T) {
	e, tokenFile, ca := loggedOut(t)
	real := e.srv
	if r := e.run("login", "--server", real.URL, "--token-file", tokenFile, "--ca", ca); r.code != 0 {
		t.Fatalf("login: exit %d %s", r.code, r.stderr)
	}
	evil := clienttest.NewServer(t)
	evil.Handle("GET /v1/me", clienttest.JSON(200, api.Me{User: api.User{ID: "usr_evil", Username: "root"}}))
	evilCA := filepath.Join(t.TempDir(), "evil.pem")
	if err := os.WriteFile(evilCA, evil.CAPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	saved := "Bearer " + clienttest.Token
	for _, tc := range []struct {
		name string
		vars map[string]string
		code int
		want string
		// sent is the Authorization the other server must see; "" for no request.
		sent string
	}{
		{"KEYFLEET_SERVER naming another server sends nothing and says what to do",
			map[string]string{cli.EnvServer: evil.URL, cli.EnvCA: evilCA}, cli.ExitAuth,
			"no token for " + evil.URL + ": the saved login is for " + real.URL + ", and its token goes only to the server that issued it; " +
				"sign in to " + evil.URL + ": keyfleet login --server " + evil.URL, ""},
		{"the other server without a CA is refused the same way",
			map[string]string{cli.EnvServer: evil.URL}, cli.ExitAuth, "or give a token for it in KEYFLEET_TOKEN", ""},
		{"a token given for the other server is the one sent there",
			map[string]string{cli.EnvServer: evil.URL, cli.EnvCA: evilCA, cli.EnvToken: "kft_given_for_the_other_server"}, cli.ExitAuth,
			"", "Bearer kft_given_for_the_other_server"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(evil.Requests())
			r := e.with(tc.vars).run("whoami")
			if r.code != tc.code || !strings.Contains(r.stderr, tc.want) {
				t.Fatalf("exit %d, stderr %q; want %d, %q", r.code, r.stderr, tc.code, tc.want)
			}
			got := evil.Requests()[before:]
			for _, req := range got {
				if a := req.Header.Get("Authorization"); a == saved || a != tc.sent {
					t.Fatalf("the other server was sent %q", a)
				}
			}
			if tc.sent != "" && len(got) == 0 || tc.sent == "" && len(got) > 0 {
				t.Fatalf("the other server got %d requests", len(got))
			}
			if strings.Contains(r.stdout+r.stderr, clienttest.Token) {
				t.Fatal("the saved token was printed")
			}
		})
	}
	// The saved server, however it is spelt, still gets the saved token.
	for _, same := range []string{real.URL, real.URL + "/", strings.ToUpper(real.URL[:8]) + real.URL[8:]} {
		if r := e.with(map[string]string{cli.EnvServer: same}).run("whoami"); r.code != 0 || !strings.Contains(r.stdout, "root (usr_1)") {
			t.Fatalf("KEYFLEET_SERVER=%s: exit %d %s", same, r.code, r.stderr)
		}
	}
}

// with is a copy of e with vars added to its environment.
func (e *env) with(vars map[string]string) *env {
	c := *e
	c.vars = map[string]string{}
	for k, v := range e.vars {
		c.vars[k] = v
	}
	for k, v := range vars {
		c.vars[k] = v
	}
	return &c
}
