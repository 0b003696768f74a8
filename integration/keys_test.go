package integration

import (
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	agentfido2 "github.com/keyfleet/keyfleet/agent/fido2"
)

// foundedDaemon starts a keyfleetd that init made with two founding
// administrators, admin and bob, and whose fido2 kind trusts the software
// keys' CA; cfg is more of keyfleetd.yaml.
func foundedDaemon(t *testing.T, cfg string) (*daemon, string, *agentfido2.CA) {
	t.Helper()
	dir := initData(t, "--admins", "bob")
	fca, err := agentfido2.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(dir, "fido2-ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: fca.Root().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	yaml := fmt.Sprintf("attestation:\n  fido2_roots: [%s]\n%s", caFile, cfg)
	if err := os.WriteFile(filepath.Join(dir, "keyfleetd.yaml"), []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return start(t, dir), dir, fca
}

// holder is a person at their workstation: the keyfleet CLI with their
// own configuration, keyfleet-agent, and their security key (a software
// FIDO2 key) whose PIN the agent reads from a file.
type holder struct {
	*kf
	name, key, pin string
}

const holderPIN = "24681357"

func newHolder(t *testing.T, fca *agentfido2.CA, name string) *holder {
	t.Helper()
	h := &holder{kf: newCLI(t), name: name, key: filepath.Join(t.TempDir(), name+"-key.json"), pin: filepath.Join(t.TempDir(), "pin")}
	if _, err := agentfido2.NewSoft(agentfido2.SoftOptions{CA: fca, Path: h.key}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(h.pin, []byte(holderPIN+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	h.env["KEYFLEET_AGENT"] = keyfleetAgent
	h.env["KEYFLEET_AGENT_ARGS"] = "--soft-fido2 " + h.key + " --pin-file " + h.pin
	return h
}

// enrolFounder registers the holder's key with their founding pass
// (DIR/bootstrap/NAME.pass), as they would: keyfleet-agent enroll, the PIN
// typed twice.
func (h *holder) enrolFounder(d *daemon, dir string) {
	h.t.Helper()
	code, err := os.ReadFile(filepath.Join(dir, "bootstrap", h.name+".pass"))
	if err != nil {
		h.t.Fatal(err)
	}
	cmd := exec.Command(keyfleetAgent, "enroll", "--server", d.url, "--ca", filepath.Join(d.dir, "tls", "cert.pem"),
		"--code", strings.TrimSpace(string(code)), "--piv=false", "--fido2", "--soft-fido2", h.key)
	cmd.Stdin = strings.NewReader(holderPIN + "\n" + holderPIN + "\n")
	cmd.Env = append(os.Environ(), "KEYFLEET_CONFIG="+h.env["KEYFLEET_CONFIG"])
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "registered FIDO2 credential for "+h.name) {
		h.t.Fatalf("%s enrolling their key: %v\n%s", h.name, err, out)
	}
	if strings.Contains(string(out), holderPIN) {
		h.t.Fatal("keyfleet-agent enroll printed the PIN")
	}
}

// signIn signs the holder in with their key.
func (h *holder) signIn(d *daemon) {
	h.t.Helper()
	out := h.must("login", "--server", d.url, "--ca", filepath.Join(d.dir, "tls", "cert.pem"), "--user", h.name)
	if !strings.Contains(out, "Signed in to") || strings.Contains(out, holderPIN) {
		h.t.Fatalf("%s's sign-in printed:\n%s", h.name, out)
	}
}

// founders starts a founded keyfleetd and gives both founders their
// keys: admin logged in with the token init wrote, bob signed in with his
// key.
func founders(t *testing.T, cfg string) (*daemon, string, *holder, *holder) {
	t.Helper()
	d, dir, fca := foundedDaemon(t, cfg)
	admin, bob := newHolder(t, fca, "admin"), newHolder(t, fca, "bob")
	admin.enrolFounder(d, dir)
	bob.enrolFounder(d, dir)
	admin.login(d, filepath.Join(dir, "admin.token"))
	bob.signIn(d)
	return d, dir, admin, bob
}
