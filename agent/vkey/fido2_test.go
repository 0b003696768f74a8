package vkey_test

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyfleet/keyfleet/agent"
	"github.com/keyfleet/keyfleet/agent/fido2"
	"github.com/keyfleet/keyfleet/agent/vkey"
	"github.com/keyfleet/keyfleet/attest"
)

// python3 is Debian's: python3-fido2 and python3-pyscard live there.
const python3 = "/usr/bin/python3"

// needPythonFIDO2 fails unless Debian's python3-fido2 is installed.
func needPythonFIDO2(t *testing.T) {
	t.Helper()
	if err := exec.Command(python3, "-c", "import fido2.pcsc").Run(); err != nil {
		t.Fatal("python3-fido2 is not installed: apt-get install python3-fido2 (make deps installs it)")
	}
}

// plugWithFIDO2 starts a virtual key with a software authenticator behind
// its FIDO applet, sharing the card's serial and firmware.
func plugWithFIDO2(t *testing.T, i int, o vkey.Options) (*vkey.Card, *fido2.Soft, *fido2.CA) {
	t.Helper()
	fca, err := fido2.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	soft, err := fido2.NewSoft(fido2.SoftOptions{CA: fca, Serial: o.Serial, Firmware: o.Firmware, Enterprise: true,
		Path: filepath.Join(t.TempDir(), "fido2.json")})
	if err != nil {
		t.Fatal(err)
	}
	o.FIDO2 = soft
	return plugOnly(t, i, o), soft, fca
}

// TestPythonFIDO2OverPCSC: Yubico's python-fido2 makes a credential and
// gets an assertion through pcscd and vpcd from the card's FIDO applet
// (CTAP2 in NFCCTAP_MSG APDUs); its Fido2Server checks both, and the
// attestation is verified again here by package attest.
func TestPythonFIDO2OverPCSC(t *testing.T) {
	needPythonFIDO2(t)
	card, soft, fca := plugWithFIDO2(t, 0, vkey.Options{CA: mustCA(t), Serial: 20260099, Firmware: [3]byte{5, 7, 4}})
	before := card.APDUs()
	start := time.Now()
	cmd := exec.Command(python3, "testdata/fido2_pcsc.py", pcsc.Slots[0].Reader, "13572468")
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python-fido2: %v\n%s", err, out)
	}
	t.Logf("python-fido2: register and authenticate in %v, %d APDUs", time.Since(start).Round(time.Millisecond), card.APDUs()-before)
	var res struct {
		Versions          []string `json:"versions"`
		AttestationObject string   `json:"attestation_object"`
		ClientData        string   `json:"client_data"`
		CredentialID      string   `json:"credential_id"`
		Flags             int      `json:"assertion_flags"`
		Counter           uint32   `json:"counter"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("python-fido2 printed %q: %v", out, err)
	}
	obj, _ := hex.DecodeString(res.AttestationObject)
	cd, _ := hex.DecodeString(res.ClientData)
	var clientData struct{ Challenge string }
	if err := json.Unmarshal(cd, &clientData); err != nil {
		t.Fatal(err)
	}
	challenge, err := base64URL(clientData.Challenge)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := attest.VerifyFIDO2(obj, cd, attest.FIDO2Expectation{Challenge: challenge, Origins: []string{"https://keyfleet.test"},
		RPID: "keyfleet.test", Time: time.Now(), Roots: []*x509.Certificate{fca.Root()}, ExcludeBuiltinRoots: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Flags&0x05 != 0x05 || res.Counter != soft.Counter() || !strings.Contains(strings.Join(res.Versions, ","), "FIDO_2_0") {
		t.Fatalf("assertion flags %02x, counter %d (key %d), versions %v", res.Flags, res.Counter, soft.Counter(), res.Versions)
	}
	if !ev.AAGUIDAttested || ev.Vendor != "Yubico AB" {
		t.Fatalf("evidence %+v", ev)
	}
}

func base64URL(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}

// TestAgentFIDO2OverPCSC: the agent's own CTAP2 client (fido2.PCSCOpener,
// libpcsclite) finds the FIDO applet through pcscd and registers and
// authenticates with it.
func TestAgentFIDO2OverPCSC(t *testing.T) {
	card, _, _ := plugWithFIDO2(t, 0, vkey.Options{CA: mustCA(t), Serial: 20260098})
	paths, err := fido2.PCSCOpener{}.Devices()
	want := fido2.PCSCPrefix + pcsc.Slots[0].Reader
	if err != nil || len(paths) != 1 || paths[0] != want {
		t.Fatalf("devices %q, %v; want %q", paths, err, want)
	}
	tok, err := fido2.PCSCOpener{}.Open(paths[0])
	if err != nil {
		t.Fatal(err)
	}
	defer tok.Close()
	before, start := card.APDUs(), time.Now()
	if err := tok.SetPIN("24682468"); err != nil {
		t.Fatal(err)
	}
	cdh := sha256.Sum256([]byte("client data"))
	att, err := tok.MakeCredential(agent.MakeCredentialRequest{ClientDataHash: cdh[:], RPID: "keyfleet.test",
		UserID: []byte("u1"), UserName: "alice", Algorithms: []int{-7}, PIN: "24682468", Enterprise: true})
	if err != nil {
		t.Fatal(err)
	}
	a, err := tok.GetAssertion(agent.GetAssertionRequest{RPID: "keyfleet.test", ClientDataHash: cdh[:], Allow: [][]byte{att.CredentialID}, PIN: "24682468"})
	if err != nil || a.AuthData[32]&0x05 != 0x05 {
		t.Fatalf("assertion %x, %v", a.AuthData, err)
	}
	t.Logf("set PIN, register, authenticate: %v, %d APDUs", time.Since(start).Round(time.Millisecond), card.APDUs()-before)
	var wrong *agent.WrongPINError
	_, err = tok.GetAssertion(agent.GetAssertionRequest{RPID: "keyfleet.test", ClientDataHash: cdh[:], Allow: [][]byte{att.CredentialID}, PIN: "11112222"})
	if !errors.As(err, &wrong) || wrong.Retries != 7 || strings.Contains(err.Error(), "11112222") {
		t.Fatalf("a wrong PIN: %v", err)
	}
}

// TestCardSerialReadsTheKeyWithoutHoldingIt: the agent's shared-connection
// serial read (used while a key is unplugged and plugged back in) finds
// a YubiKey 5's serial in its PIV applet and an older one's in its OTP
// applet, and leaves the card free for an exclusive client.
func TestCardSerialReadsTheKeyWithoutHoldingIt(t *testing.T) {
	for _, fw := range [][3]byte{{5, 7, 4}, {4, 3, 5}} {
		t.Run(fmt.Sprintf("firmware %d.%d.%d", fw[0], fw[1], fw[2]), func(t *testing.T) {
			plugOnly(t, 0, vkey.Options{CA: mustCA(t), Serial: 20260200 + uint32(fw[0]), Firmware: fw})
			serial, err := fido2.CardSerial(pcsc.Slots[0].Reader)
			if err != nil || serial != 20260200+uint32(fw[0]) {
				t.Fatalf("serial %d, %v", serial, err)
			}
			openWhenReady(t, pcsc.Slots[0].Reader).Close()
		})
	}
	if _, err := fido2.CardSerial(pcsc.Slots[1].Reader); err == nil {
		t.Fatal("a serial from an empty reader")
	}
}
