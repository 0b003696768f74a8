package vkey_test

import (
	"crypto/x509"
	"encoding/pem"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/keyfleet/keyfleet/agent/vkey"
	"github.com/keyfleet/keyfleet/attest"
)

// TestYubicoPIVTool drives the virtual key with Yubico's own C tool: the
// status, key generation with policies, and attestation.
func TestYubicoPIVTool(t *testing.T) {
	tool, err := exec.LookPath("yubico-piv-tool")
	if err != nil {
		t.Fatal("yubico-piv-tool is not installed: apt-get install yubico-piv-tool (make deps installs it)")
	}
	ca := mustCA(t)
	plugOnly(t, 1, vkey.Options{CA: ca, Serial: 20260042, Firmware: [3]byte{5, 4, 3}})
	reader := pcsc.Slots[1].Reader
	run := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(tool, append([]string{"-r", reader}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("yubico-piv-tool %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	if out := run("-a", "version"); !strings.Contains(out, "5.4.3") {
		t.Fatalf("version: %s", out)
	}
	if out := run("-a", "status"); !strings.Contains(out, "20260042") {
		t.Fatalf("status: %s", out)
	}
	run("-a", "generate", "-s", "9c", "-A", "ECCP384", "--pin-policy", "always", "--touch-policy", "cached")
	out := run("-a", "attest", "-s", "9c")
	blk, _ := pem.Decode([]byte(out))
	if blk == nil {
		t.Fatalf("attest printed no PEM: %s", out)
	}
	slot, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	dev := deviceCert(t, run("-a", "read-certificate", "-s", "f9"))
	ev, err := attest.VerifyPIV(slot, dev, attest.PIVOptions{Time: time.Now(), Roots: []*x509.Certificate{ca.Root()}})
	if err != nil || ev.Serial != 20260042 || ev.PINPolicy != "always" || ev.TouchPolicy != "cached" || ev.KeyAlgorithm != "EC-P384" {
		t.Fatalf("evidence %+v, %v", ev, err)
	}
}

func deviceCert(t *testing.T, out string) *x509.Certificate {
	t.Helper()
	blk, _ := pem.Decode([]byte(out))
	if blk == nil {
		t.Fatalf("read-certificate printed no PEM: %s", out)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestOpenSC checks that OpenSC recognises the virtual key as a PIV card.
func TestOpenSC(t *testing.T) {
	tool, err := exec.LookPath("opensc-tool")
	if err != nil {
		t.Fatal("opensc-tool is not installed: apt-get install opensc (make deps installs it)")
	}
	plugOnly(t, 1, vkey.Options{CA: mustCA(t)})
	out, err := exec.Command(tool, "--reader", pcsc.Slots[1].Reader, "--name").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Personal Identity Verification") {
		t.Fatalf("opensc-tool --name: %v\n%s", err, out)
	}
}
