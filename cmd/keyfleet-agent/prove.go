package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/keyfleet/keyfleet/agent"
	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/api/client"
)

type proveFlags struct {
	keyFlags
	challenge, pinFile, format string
}

// maxChallenge bounds what prove reads as a challenge.
const maxChallenge = 1 << 20

func (a *app) proveCmd() *cobra.Command {
	var f proveFlags
	cmd := &cobra.Command{
		Use:   "prove [--challenge FILE]",
		Short: "Answer a proof challenge with your own key, for one action (keyfleet runs it)",
		Long: `prove answers a challenge that keyfleetd bound to one action (approving a
request, applying a policy, signing in, …) with the key connected to this
workstation: a PIV signature or a FIDO2 assertion, after the key's PIN. It
reads the challenge (the JSON of POST /v1/proofs or /v1/login/begin) from
--challenge FILE or standard input, shows on standard error what answering
allows ("You are proving: …"), and prints the proof on standard output: the
JSON of api.Proof, or with --format header the value of the Keyfleet-Proof
header. It talks to no server.

keyfleet runs it for every action that needs a proof; run it yourself only
to call the API directly:

  curl … -d '{"action":"policy.apply","request":{…}}' https://…/v1/proofs > challenge.json
  curl -H "Keyfleet-Proof: $(keyfleet-agent prove --challenge challenge.json --format header)" …

The PIN is asked without echo (from the terminal when the challenge comes
on standard input) or read from --pin-file; it is never printed. A person
with only an authenticator app answers the actions that allow it with the
app's code instead.`,
		Example: `  keyfleet-agent prove --challenge challenge.json > proof.json
  keyfleet-agent prove --challenge challenge.json --soft-fido2 key.json --pin-file pin.txt --format header`,
		Args: noArgs,
		PreRunE: func(*cobra.Command, []string) error {
			if f.format != "json" && f.format != "header" {
				return usagef("--format is json or header, not %q", f.format)
			}
			return nil
		},
		RunE: func(*cobra.Command, []string) error { return a.prove(f) },
	}
	fs := cmd.Flags()
	f.keyFlags.register(fs)
	fs.StringVar(&f.challenge, "challenge", "-", "file holding the challenge JSON (- for standard input)")
	fs.StringVar(&f.pinFile, "pin-file", "", "file whose first line is the key's PIN (default: ask, without echo)")
	fs.StringVar(&f.format, "format", "json", "json (api.Proof) or header (the Keyfleet-Proof header's value)")
	return cmd
}

// prove reads the challenge, answers it and prints the proof.
func (a *app) prove(f proveFlags) error {
	ch, err := readChallenge(f.challenge)
	if err != nil {
		return err
	}
	fmt.Fprintf(a.stderr, "You are proving: %s\n", ch.Summary)
	asker, closeAsk := a.asker(f)
	defer closeAsk()
	p, err := a.answerProof(ch, f, asker)
	if err != nil {
		return proveError(ch, err)
	}
	if f.format == "header" {
		_, err = fmt.Fprintln(a.stdout, client.EncodeProof(p))
		return err
	}
	return json.NewEncoder(a.stdout).Encode(p)
}

// answerProof answers ch with the connected key, or with the code of an
// authenticator app when the challenge offers no key.
func (a *app) answerProof(ch api.ProofChallenge, f proveFlags, asker *prompter) (api.Proof, error) {
	if agent.WantsKey(ch) {
		return a.proveWithKey(ch, f, asker)
	}
	return agent.Prove(ch, agent.Keys{}, func(vf api.VerificationFactor, input string) (string, error) {
		return asker.secret(fmt.Sprintf("%s of %s: ", input, factorName(vf)))
	})
}

// proveWithKey answers with the connected key, after its PIN.
func (a *app) proveWithKey(ch api.ProofChallenge, f proveFlags, asker *prompter) (api.Proof, error) {
	keys, closeKeys, err := optionalKeys(f.keyFlags, offers(ch, "piv"), offers(ch, "fido2"))
	if err != nil {
		return api.Proof{}, err
	}
	defer closeKeys()
	if keys.PIN, err = readPIN(f.pinFile); err != nil {
		return api.Proof{}, err
	}
	if f.pinFile == "" {
		if keys.PIN, err = asker.secret("PIN of the key: "); err != nil {
			return api.Proof{}, err
		}
	}
	keys.Touch = touchPrompt(a.stderr)
	return agent.Prove(ch, keys, nil)
}

// offers reports whether ch offers a factor of kind.
func offers(ch api.ProofChallenge, kind string) bool {
	for _, vf := range ch.Factors {
		if vf.Kind == kind {
			return true
		}
	}
	return false
}

func factorName(vf api.VerificationFactor) string {
	if vf.Label != "" {
		return fmt.Sprintf("your %s factor %q", vf.Kind, vf.Label)
	}
	return "your " + vf.Kind + " factor"
}

// proveError says what to do when the key could not answer.
func proveError(ch api.ProofChallenge, err error) error {
	if errors.Is(err, agent.ErrNoAnswer) || errors.Is(err, agent.ErrNoKey) {
		return fmt.Errorf("%w (keyfleetd offered %s for %s)", err, kindsOf(ch), ch.Action)
	}
	return fmt.Errorf("answering the challenge for %s: %w", ch.Action, err)
}

func kindsOf(ch api.ProofChallenge) string {
	seen := map[string]bool{}
	out := ""
	for _, vf := range ch.Factors {
		if !seen[vf.Kind] {
			seen[vf.Kind] = true
			if out != "" {
				out += ", "
			}
			out += vf.Kind
		}
	}
	return out
}

// readChallenge reads the challenge from a file, or stdin for "-".
func readChallenge(path string) (api.ProofChallenge, error) {
	var r io.Reader = stdin
	if path != "-" {
		file, err := os.Open(path)
		if err != nil {
			return api.ProofChallenge{}, fmt.Errorf("reading the challenge: %w", err)
		}
		defer file.Close()
		r = file
	}
	b, err := io.ReadAll(io.LimitReader(r, maxChallenge))
	if err != nil {
		return api.ProofChallenge{}, fmt.Errorf("reading the challenge: %w", err)
	}
	return agent.ParseChallenge(b)
}

// prompter asks for PINs and codes: on the agent's standard input, or on
// the terminal when standard input carried the challenge.
type prompter struct {
	stderr io.Writer
	// tty is opened at the first question when stdin held the challenge.
	useTTY bool
	tty    *os.File
	line   *bufio.Reader
}

// asker returns the prompter for f and a function that closes it.
func (a *app) asker(f proveFlags) (*prompter, func()) {
	p := &prompter{stderr: a.stderr, useTTY: f.challenge == "-"}
	return p, func() {
		if p.tty != nil {
			p.tty.Close()
		}
	}
}

// secret asks on stderr and reads an answer without echo. The answer is
// never printed.
func (p *prompter) secret(prompt string) (string, error) {
	if !p.useTTY {
		return readSecret(p.stderr, prompt)
	}
	if p.tty == nil {
		tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
		if err != nil {
			return "", errors.New("the challenge came on standard input, so there is no terminal to type the PIN or code on: give --pin-file FILE, or pass the challenge with --challenge FILE")
		}
		p.tty, p.line = tty, bufio.NewReader(tty)
	}
	fmt.Fprint(p.stderr, prompt)
	defer fmt.Fprintln(p.stderr)
	if term.IsTerminal(int(p.tty.Fd())) {
		b, err := term.ReadPassword(int(p.tty.Fd()))
		if err != nil {
			return "", fmt.Errorf("reading from the terminal: %w", err)
		}
		return strings.TrimSpace(string(b)), nil
	}
	s, err := p.line.ReadString('\n')
	if err != nil && s == "" {
		return "", errors.New("no answer: the terminal is closed")
	}
	return strings.TrimSpace(s), nil
}
