package cli_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/api/client/clienttest"
	"github.com/keyfleet/keyfleet/internal/cli"
)

type result struct {
	code           int
	stdout, stderr string
}

// env is a test environment: a fake daemon and the variables that point
// the CLI at it.
type env struct {
	t    *testing.T
	srv  *clienttest.Server
	vars map[string]string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	s := clienttest.NewServer(t)
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, s.CAPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return &env{t: t, srv: s, vars: map[string]string{
		cli.EnvConfig: filepath.Join(dir, "cfg", "config.json"),
		cli.EnvServer: s.URL,
		cli.EnvToken:  clienttest.Token,
		cli.EnvCA:     ca,
	}}
}

func (e *env) run(args ...string) result {
	return e.runIn("", args...)
}

func (e *env) runIn(stdin string, args ...string) result {
	e.t.Helper()
	var out, errb bytes.Buffer
	code := cli.Run(context.Background(), args, strings.NewReader(stdin), &out, &errb, e.getenv)
	return result{code, out.String(), errb.String()}
}

func (e *env) getenv(k string) string { return e.vars[k] }

// syncBuffer is a bytes.Buffer safe to read while a command writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// codeChallenge answers POST /v1/proofs with a challenge that only an
// authenticator app's code answers, so keyfleet asks for the code itself
// (no keyfleet-agent).
var codeChallenge = clienttest.JSON(201, api.ProofChallenge{
	Verification: api.Verification{ID: "vrf_1", UserID: "usr_1", Factors: []api.VerificationFactor{
		{FactorID: "fac_totp", Kind: "totp", Label: "phone", Inputs: []string{"code"}}}},
	Action: "approval.approve", Subject: "apr_1", Summary: "approval.approve apr_1: action=factor.revoke", Digest: "ab"})
