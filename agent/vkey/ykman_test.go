package vkey_test

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyfleet/keyfleet/agent/vkey"
	"github.com/keyfleet/keyfleet/attest"
)

// TestYkman drives the virtual key with Yubico's ykman (Debian's
// yubikey-manager 4.0.9) as a user does, without --device or --reader:
// the key's reader is the only YubiKey reader (one slot per key), so
// `ykman list` shows one key and `ykman info` finds it. Extended APDUs,
// the management applet, PIV key generation with policies, attestation, a
// self-signed certificate that needs the PIN ("once") within ykman's
// session, a certificate of another key refused with the status word a
// YubiKey answers (6A80: ykman says so instead of a traceback), PIN
// change; `ykman info` reports the FIDO2 application. (ykman 4.0.9 speaks
// FIDO over USB HID only for a USB YubiKey: `ykman fido` over this reader
// answers "Unsupported Connection type", so python-fido2 tests the FIDO
// applet.)
func TestYkman(t *testing.T) {
	tool, err := exec.LookPath("ykman")
	if err != nil {
		t.Fatal("ykman is not installed: apt-get install yubikey-manager (make deps installs it)")
	}
	if p := pcsc.Need(t); p.OneSlot != nil {
		t.Fatalf("the readers have two slots each, so ykman sees two YubiKeys: %v", p.OneSlot)
	}
	ca := mustCA(t)
	plugWithFIDO2(t, 0, vkey.Options{CA: ca, Serial: 20260077, Firmware: [3]byte{5, 7, 4}, FormFactor: 0x03})
	dir := t.TempDir()
	file := func(name string) string { return filepath.Join(dir, name) }
	writeCertPEM(t, file("other.pem"), selfSigned(t))
	for _, s := range ykmanSteps(file) {
		start := time.Now()
		out, err := exec.Command(tool, s.args...).CombinedOutput()
		if (err != nil) != s.fails {
			t.Fatalf("%s: ykman %s: %v\n%s", s.name, strings.Join(s.args, " "), err, out)
		}
		if strings.Contains(string(out), "Traceback") {
			t.Fatalf("%s: ykman %s printed a traceback:\n%s", s.name, strings.Join(s.args, " "), out)
		}
		for _, w := range s.want {
			if !strings.Contains(string(out), w) {
				t.Fatalf("%s: ykman %s printed no %q:\n%s", s.name, strings.Join(s.args, " "), w, out)
			}
		}
		t.Logf("%s: %v", s.name, time.Since(start).Round(time.Millisecond))
	}
	if out, _ := exec.Command(tool, "list").Output(); strings.Count(strings.TrimSpace(string(out)), "\n") != 0 {
		t.Fatalf("ykman list shows more than the one key:\n%s", out)
	}
	slot := pemCert(t, file("att.pem"))
	dev := pemCert(t, file("f9.pem"))
	ev, err := attest.VerifyPIV(slot, dev, attest.PIVOptions{Time: time.Now(), Roots: []*x509.Certificate{ca.Root()}})
	if err != nil || ev.Serial != 20260077 || ev.PINPolicy != "once" || ev.TouchPolicy != "cached" || ev.FormFactor != "USB-C Keychain" {
		t.Fatalf("evidence %+v, %v", ev, err)
	}
}

type ykmanStep struct {
	name  string
	args  []string
	want  []string
	fails bool
}

func ykmanSteps(file func(string) string) []ykmanStep {
	return []ykmanStep{
		{"list finds one key with its serial", []string{"list"}, []string{"YubiKey 5C", "5.7.4", "Serial: 20260077"}, false},
		{"info finds the key without --device", []string{"info"},
			[]string{"Serial number: 20260077", "Firmware version: 5.7.4", "Form factor: Keychain (USB-C)", "PIV         \tEnabled", "FIDO2       \tEnabled"}, false},
		{"piv info sees a factory-fresh applet", []string{"piv", "info"},
			[]string{"PIV version: 5.7.4", "Using default PIN", "PIN tries remaining: 3/3", "Management key algorithm: AES192"}, false},
		{"generate an EC P-256 key with policies", []string{"piv", "keys", "generate", "-a", "ECCP256",
			"--pin-policy", "ONCE", "--touch-policy", "CACHED", "-m", hexDefaultMgmtKey, "9a", file("pub.pem")}, nil, false},
		{"self-sign a certificate with it (PIN once)", []string{"piv", "certificates", "generate",
			"-s", "keyfleet ykman", "-P", "123456", "-m", hexDefaultMgmtKey, "9a", file("pub.pem")}, nil, false},
		{"a certificate of another key is refused, not imported", []string{"piv", "certificates", "import", "--verify",
			"-P", "123456", "-m", hexDefaultMgmtKey, "9a", file("other.pem")}, []string{"not tied to the private key"}, true},
		{"attest the key", []string{"piv", "keys", "attest", "9a", file("att.pem")}, nil, false},
		{"export the F9 certificate", []string{"piv", "certificates", "export", "f9", file("f9.pem")}, nil, false},
		{"change the PIN", []string{"piv", "access", "change-pin", "-P", "123456", "-n", "24681357"}, []string{"New PIN set"}, false},
		{"replace the management key with a random PIN-protected one", []string{"piv", "access",
			"change-management-key", "-a", "AES256", "--generate", "--protect", "-m", hexDefaultMgmtKey, "-P", "24681357"}, nil, false},
		{"generate with the protected key, given the PIN only", []string{"piv", "keys", "generate",
			"-a", "ECCP384", "-P", "24681357", "9c", file("pub9c.pem")}, nil, false},
		{"piv info lists the self-signed certificate and a changed PIN", []string{"piv", "info"},
			[]string{"Slot 9a:", "keyfleet ykman", "PIN tries remaining: 3/3", "Management key algorithm: AES256", "Management key is stored on the YubiKey, protected by PIN"}, false},
	}
}

func writeCertPEM(t *testing.T, path string, c *x509.Certificate) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// hexDefaultMgmtKey is the factory management key, as ykman takes it.
const hexDefaultMgmtKey = "010203040506070801020304050607080102030405060708"

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func pemCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	blk, _ := pem.Decode(mustRead(t, path))
	if blk == nil {
		t.Fatalf("%s holds no PEM", path)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
