package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/keyfleet/keyfleet/agent"
	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/api/client"
)

// Fresh proofs (docs/security.md, "Fresh proof"): approving, applying a
// policy, rotating break-glass, a person's own token and the other
// actions of daemon/proof's catalogue run only with a proof made by the
// person's own key moments before. keyfleet asks keyfleetd for a
// challenge bound to the action (POST /v1/proofs), has keyfleet-agent
// answer it with the connected key (keyfleet-agent prove; a code-only
// challenge is answered here), and sends the action with the proof.

// Environment variables that find and drive keyfleet-agent.
const (
	EnvAgent     = "KEYFLEET_AGENT"      // path of keyfleet-agent
	EnvAgentArgs = "KEYFLEET_AGENT_ARGS" // extra arguments for keyfleet-agent prove, split at spaces
)

// Actions that need a proof, as keyfleetd names them (POST /v1/proofs
// "action"; docs/security.md lists them).
const (
	actApprove      = "approval.approve"
	actDeny         = "approval.deny"
	actPolicy       = "policy.apply"
	actRotate       = "breakglass.rotate"
	actShare        = "breakglass.share"
	actPass         = "pass.issue"
	actToken        = "token.create"
	actFactorAdd    = "factor.add"
	actFactorRemove = "factor.remove"
	actCodes        = "recovery_codes.regenerate"
)

// agentName is keyfleet-agent's file name.
const agentName = "keyfleet-agent"

// maxProofOutput bounds what keyfleet reads from keyfleet-agent prove.
const maxProofOutput = 1 << 20

// proofFor builds the proof request of an action: it may look things up
// (a username's id), so it runs only when a proof is needed.
type proofFor func(ctx context.Context, c *client.Client) (api.ProofRequest, error)

// proofOf is the proof request of action about subject, whose body is
// what the action sends (nil for none).
func proofOf(action, subject string, body any) proofFor {
	return func(context.Context, *client.Client) (api.ProofRequest, error) {
		req := api.ProofRequest{Action: action, Subject: subject}
		if body == nil {
			return req, nil
		}
		b, err := json.Marshal(body)
		if err != nil {
			return req, fmt.Errorf("encoding the request to prove: %w", err)
		}
		req.Request = b
		return req, nil
	}
}

// withProof runs act; when keyfleetd answers that it needs a fresh proof,
// it gets one for need and runs act once more with it. Actions that need
// a proof only sometimes (a staff account's pass, one's own token, adding
// a second factor) cost nothing more when they need none.
func (a *app) withProof(ctx context.Context, c *client.Client, need proofFor, act func(*client.Client) error) error {
	err := act(c)
	if !client.IsProofRequired(err) {
		return err
	}
	p, err := a.proof(ctx, c, need)
	if err != nil {
		return err
	}
	return act(c.WithProof(p))
}

// provedFirst gets the proof before the action, for decisions: a decision
// sent without one is refused and audited as an attempt. When keyfleetd
// will not make a challenge for the caller (a break-glass session needs
// none; a role that may not decide), the action itself is sent and its
// answer says why.
func (a *app) provedFirst(ctx context.Context, c *client.Client, need proofFor, act func(*client.Client) error) error {
	p, err := a.proof(ctx, c, need)
	if client.IsForbidden(err) {
		return act(c)
	}
	if err != nil {
		return err
	}
	return act(c.WithProof(p))
}

// proof asks keyfleetd for a challenge and has the person's key answer it.
func (a *app) proof(ctx context.Context, c *client.Client, need proofFor) (api.Proof, error) {
	req, err := need(ctx, c)
	if err != nil {
		return api.Proof{}, err
	}
	ch, err := c.BeginProof(ctx, req)
	if err != nil {
		return api.Proof{}, err
	}
	return a.answer(ctx, ch)
}

// answer answers a challenge: with the connected key through
// keyfleet-agent, or with a code typed here when only an authenticator
// app can answer it.
func (a *app) answer(ctx context.Context, ch api.ProofChallenge) (api.Proof, error) {
	if agent.WantsKey(ch) {
		return a.runAgent(ctx, ch)
	}
	a.note("You are proving: %s", ch.Summary)
	p, err := agent.Prove(ch, agent.Keys{}, func(vf api.VerificationFactor, input string) (string, error) {
		name := vf.Kind
		if vf.Label != "" {
			name += " " + fmt.Sprintf("%q", vf.Label)
		}
		return a.askSecret(fmt.Sprintf("%s from your %s factor: ", input, name))
	})
	if err != nil {
		return api.Proof{}, fail(err, "run the command again and type the code your authenticator app shows")
	}
	return p, nil
}

// runAgent runs keyfleet-agent prove on the challenge. The challenge goes
// in a private file, so that the agent's standard input stays the
// terminal for the PIN; its prompts go to stderr; the proof comes back on
// its standard output.
func (a *app) runAgent(ctx context.Context, ch api.ProofChallenge) (api.Proof, error) {
	path, err := a.agentPath()
	if err != nil {
		return api.Proof{}, err
	}
	file, err := writeChallenge(ch)
	if err != nil {
		return api.Proof{}, err
	}
	defer os.Remove(file)
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, path, append([]string{"prove", "--challenge", file}, a.agentArgs()...)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = a.stdin, &capped{b: &out, n: maxProofOutput}, a.stderr
	cmd.WaitDelay = time.Second
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return api.Proof{}, ctx.Err()
		}
		return api.Proof{}, fail(fmt.Errorf("keyfleet-agent could not prove %s (%v): its message is above", ch.Action, err),
			"connect your enrolled security key and run the command again")
	}
	var p api.Proof
	if err := json.Unmarshal(out.Bytes(), &p); err != nil || p.ID != ch.ID || p.FactorID == "" {
		return api.Proof{}, fail(fmt.Errorf("%s prove printed no proof of this challenge", path),
			"check that "+path+" is keyfleet-agent of the same release as keyfleet ('keyfleet-agent --version')")
	}
	return p, nil
}

// writeChallenge writes the challenge to a new private file and returns
// its name. The challenge is not secret; the file is private anyway.
func writeChallenge(ch api.ProofChallenge) (string, error) {
	b, err := json.Marshal(ch)
	if err != nil {
		return "", fmt.Errorf("encoding the challenge: %w", err)
	}
	f, err := os.CreateTemp("", "keyfleet-challenge-*.json")
	if err != nil {
		return "", fail(fmt.Errorf("writing the challenge for keyfleet-agent: %w", err), "set TMPDIR to a writable folder")
	}
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", fail(fmt.Errorf("writing the challenge for keyfleet-agent: %w", err), "set TMPDIR to a writable folder")
	}
	return f.Name(), nil
}

// agentPath finds keyfleet-agent: --agent, $KEYFLEET_AGENT, beside the
// keyfleet executable, then PATH.
func (a *app) agentPath() (string, error) {
	for _, given := range []struct{ path, source string }{{a.agentFlag, "--agent"}, {a.env(EnvAgent), EnvAgent}} {
		if given.path == "" {
			continue
		}
		if _, err := exec.LookPath(given.path); err != nil {
			return "", fail(fmt.Errorf("%s %s is not an executable keyfleet-agent: %w", given.source, given.path, unwrapExec(err)),
				"point "+given.source+" at keyfleet-agent (make build puts it in bin/)")
		}
		return given.path, nil
	}
	var beside string
	if self, err := os.Executable(); err == nil {
		beside = filepath.Join(filepath.Dir(self), agentName)
		if st, err := os.Stat(beside); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return beside, nil
		}
	}
	if p, err := exec.LookPath(agentName); err == nil {
		return p, nil
	}
	return "", &cliError{code: ExitError, err: errMissingAgent(beside),
		hint: "install keyfleet-agent (make build puts it in bin/ beside keyfleet; it needs the pcscd and libfido2 packages), " +
			"or point --agent PATH or " + EnvAgent + " at it"}
}

// errMissingAgent says where keyfleet looked for keyfleet-agent.
func errMissingAgent(beside string) error {
	where := "beside keyfleet"
	if beside != "" {
		where = "at " + beside
	}
	return fmt.Errorf("this action needs a fresh proof with your security key, made by keyfleet-agent, which is not installed: it is not %s nor on PATH, and neither --agent nor %s names it", where, EnvAgent)
}

func unwrapExec(err error) error {
	var ee *exec.Error
	if errors.As(err, &ee) {
		return ee.Err
	}
	return err
}

// agentArgs are the extra arguments for keyfleet-agent prove:
// $KEYFLEET_AGENT_ARGS split at spaces, then each --agent-arg.
func (a *app) agentArgs() []string {
	return append(strings.Fields(a.env(EnvAgentArgs)), a.agentExtra...)
}

// askSecret asks on stderr and reads one line from stdin, without echo on
// a terminal. The answer is never printed.
func (a *app) askSecret(prompt string) (string, error) {
	fmt.Fprint(a.stderr, prompt)
	defer fmt.Fprintln(a.stderr)
	if f, ok := a.stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		b, err := term.ReadPassword(int(f.Fd()))
		return strings.TrimSpace(string(b)), err
	}
	line, err := readLine(a.stdin)
	if line == "" && err != nil {
		return "", errors.New("no answer: standard input is closed")
	}
	return strings.TrimSpace(line), nil
}

// readLine reads up to a newline one byte at a time, so that nothing
// after it is taken from a reader others read too.
func readLine(r io.Reader) (string, error) {
	var b strings.Builder
	buf := make([]byte, 1)
	for {
		n, err := r.Read(buf)
		if n == 1 {
			if buf[0] == '\n' {
				return b.String(), nil
			}
			b.WriteByte(buf[0])
		}
		if err != nil {
			return b.String(), err
		}
	}
}

// capped writes at most n bytes to b and drops the rest.
type capped struct {
	b *bytes.Buffer
	n int
}

func (c *capped) Write(p []byte) (int, error) {
	if room := c.n - c.b.Len(); room > 0 {
		c.b.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}
