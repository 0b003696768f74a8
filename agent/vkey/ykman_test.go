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
// yubikey-manager 4.0.9): extended APDUs, the management applet, PIV key
// generation with policies, attestation, a self-signed certificate that
// needs the PIN ("once") within ykman's session, PIN change; `ykman info`
// reports the FIDO2 application. (ykman 4.0.9 speaks FIDO over USB HID
// only for a USB YubiKey: `ykman fido` over this reader answers
// "Unsupported Connection type", so python-fido2 tests the FIDO applet.)
//
// The card sits in slot 0: ykman reads one device per USB product id and
// gives up on every reader of that id after the first that fails, so an
// empty "… 00 00" slot listed before the card would hide it from
// `ykman list`.
func TestYkman(t *testing.T) {
	tool, err := exec.LookPath("ykman")
	if err != nil {
		t.Skip("ykman is not installed (make test installs it; or apt-get install yubikey-manager)")
	}
	ca := mustCA(t)
	plugWithFIDO2(t, 0, vkey.Options{CA: ca, Serial: 20260077, Firmware: [3]byte{5, 7, 4}, FormFactor: 0x03})
	reader := pcsc.Slots[0].Reader
	dir := t.TempDir()
	file := func(name string) string { return filepath.Join(dir, name) }
	steps := []struct {
		name string
		args []string
		want []string
	}{
		{"list finds the key with its serial", []string{"list"}, []string{"YubiKey 5C", "5.7.4", "Serial: 20260077"}},
		{"info reads the management applet", []string{"--reader", reader, "info"},
			[]string{"Serial number: 20260077", "Firmware version: 5.7.4", "Form factor: Keychain (USB-C)", "PIV         \tEnabled", "FIDO2       \tEnabled"}},
		{"piv info sees a factory-fresh applet", []string{"--reader", reader, "piv", "info"},
			[]string{"PIV version: 5.7.4", "Using default PIN", "PIN tries remaining: 3/3", "Management key algorithm: AES192"}},
		{"generate an EC P-256 key with policies", []string{"--reader", reader, "piv", "keys", "generate", "-a", "ECCP256",
			"--pin-policy", "ONCE", "--touch-policy", "CACHED", "-m", hexDefaultMgmtKey, "9a", file("pub.pem")}, nil},
		{"self-sign a certificate with it (PIN once)", []string{"--reader", reader, "piv", "certificates", "generate",
			"-s", "keyfleet ykman", "-P", "123456", "-m", hexDefaultMgmtKey, "9a", file("pub.pem")}, nil},
		{"attest the key", []string{"--reader", reader, "piv", "keys", "attest", "9a", file("att.pem")}, nil},
		{"export the F9 certificate", []string{"--reader", reader, "piv", "certificates", "export", "f9", file("f9.pem")}, nil},
		{"change the PIN", []string{"--reader", reader, "piv", "access", "change-pin", "-P", "123456", "-n", "24681357"}, []string{"New PIN set"}},
		{"replace the management key with a random PIN-protected one", []string{"--reader", reader, "piv", "access",
			"change-management-key", "-a", "AES256", "--generate", "--protect", "-m", hexDefaultMgmtKey, "-P", "24681357"}, nil},
		{"generate with the protected key, given the PIN only", []string{"--reader", reader, "piv", "keys", "generate",
			"-a", "ECCP384", "-P", "24681357", "9c", file("pub9c.pem")}, nil},
		{"piv info lists the certificate and a changed PIN", []string{"--reader", reader, "piv", "info"},
			[]string{"Slot 9a:", "keyfleet ykman", "PIN tries remaining: 3/3", "Management key algorithm: AES256", "Management key is stored on the YubiKey, protected by PIN"}},
	}
	for _, s := range steps {
		start := time.Now()
		out, err := exec.Command(tool, s.args...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s: ykman %s: %v\n%s", s.name, strings.Join(s.args, " "), err, out)
		}
		for _, w := range s.want {
			if !strings.Contains(string(out), w) {
				t.Fatalf("%s: ykman %s printed no %q:\n%s", s.name, strings.Join(s.args, " "), w, out)
			}
		}
		t.Logf("%s: %v", s.name, time.Since(start).Round(time.Millisecond))
	}
	slot := pemCert(t, file("att.pem"))
	dev := pemCert(t, file("f9.pem"))
	ev, err := attest.VerifyPIV(slot, dev, attest.PIVOptions{Time: time.Now(), Roots: []*x509.Certificate{ca.Root()}})
	if err != nil || ev.Serial != 20260077 || ev.PINPolicy != "once" || ev.TouchPolicy != "cached" || ev.FormFactor != "USB-C Keychain" {
		t.Fatalf("evidence %+v, %v", ev, err)
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
