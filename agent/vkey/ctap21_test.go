package vkey_test

import (
	"crypto/sha256"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyfleet/keyfleet/agent"
	"github.com/keyfleet/keyfleet/agent/fido2"
	"github.com/keyfleet/keyfleet/agent/vkey"
)

// offsetClock is a clock a test moves forward while the key runs.
type offsetClock struct{ offset atomic.Int64 }

func (c *offsetClock) now() time.Time { return time.Now().Add(time.Duration(c.offset.Load())) }

func (c *offsetClock) advance(d time.Duration) { c.offset.Add(int64(d)) }

// plugFIDO2Key plugs a virtual key with a software authenticator on clock
// into slot 0 and returns the card and the authenticator.
func plugFIDO2Key(t *testing.T, clock *offsetClock) (*vkey.Card, *fido2.Soft) {
	t.Helper()
	fca, err := fido2.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	soft, err := fido2.NewSoft(fido2.SoftOptions{CA: fca, Serial: 20260150, Firmware: [3]byte{5, 7, 4},
		Path: filepath.Join(t.TempDir(), "fido2.json"), Now: clock.now})
	if err != nil {
		t.Fatal(err)
	}
	return plugOnly(t, 0, vkey.Options{CA: mustCA(t), Serial: 20260150, FIDO2: soft}), soft
}

// ctap21 runs one scenario of testdata/ctap21.py (python-fido2) against
// the key in slot 0 and decodes what it printed into out.
func ctap21(t *testing.T, scenario string, out any) {
	t.Helper()
	needPythonFIDO2(t)
	cmd := exec.Command(python3, "testdata/ctap21.py", pcsc.Slots[0].Reader, "24681357", scenario)
	cmd.Stderr = os.Stderr
	b, err := cmd.Output()
	if err != nil {
		t.Fatalf("python-fido2 %s: %v\n%s", scenario, err, b)
	}
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatalf("python-fido2 %s printed %q: %v", scenario, b, err)
	}
}

// TestPythonFIDO2ReadsAYubiKey57Info: python-fido2 reads getInfo as a
// YubiKey 5.7 reports it (for what the key implements): CTAP 2.1, the
// credential management and preview options, permission tokens,
// makeCredUvNotRqd, hmac-secret and credProtect, the firmware version and
// room for 100 discoverable credentials.
func TestPythonFIDO2ReadsAYubiKey57Info(t *testing.T) {
	plugFIDO2Key(t, &offsetClock{})
	var info struct {
		Versions          []string        `json:"versions"`
		Extensions        []string        `json:"extensions"`
		Options           map[string]bool `json:"options"`
		PINProtocols      []int           `json:"pin_protocols"`
		MaxCredsInList    int             `json:"max_creds_in_list"`
		MaxCredIDLength   int             `json:"max_cred_id_length"`
		Transports        []string        `json:"transports"`
		Firmware          int             `json:"firmware_version"`
		MinPINLength      int             `json:"min_pin_length"`
		RemainingDiscover int             `json:"remaining_disc_creds"`
	}
	ctap21(t, "info", &info)
	wantOpts := []string{"rk", "up", "credMgmt", "credentialMgmtPreview", "pinUvAuthToken", "makeCredUvNotRqd"}
	for _, o := range wantOpts {
		if !info.Options[o] {
			t.Errorf("option %s is not true: %v", o, info.Options)
		}
	}
	if v, ok := info.Options["clientPin"]; !ok || v {
		t.Errorf("clientPin %v, %v: want present and false on a key without a PIN", v, ok)
	}
	switch {
	case !slices.Equal(info.Versions, []string{"FIDO_2_0", "FIDO_2_1_PRE", "FIDO_2_1"}):
		t.Errorf("versions %v", info.Versions)
	case !slices.Equal(info.Extensions, []string{"credProtect", "hmac-secret"}):
		t.Errorf("extensions %v", info.Extensions)
	case !slices.Equal(info.PINProtocols, []int{2, 1}), info.MaxCredsInList != 8, info.MaxCredIDLength != 128:
		t.Errorf("protocols %v, list %d, id length %d", info.PINProtocols, info.MaxCredsInList, info.MaxCredIDLength)
	case info.Firmware != 0x050704, info.MinPINLength != 4, info.RemainingDiscover != 100:
		t.Errorf("firmware %#x, min PIN %d, remaining %d", info.Firmware, info.MinPINLength, info.RemainingDiscover)
	case !slices.Equal(info.Transports, []string{"nfc", "usb"}):
		t.Errorf("transports %v", info.Transports)
	}
}

type accountsResult struct {
	CreatedExt          map[string]any `json:"created_ext"`
	Discovered          []string       `json:"discovered"`
	NumberOfCredentials int            `json:"number_of_credentials"`
	UserHandles         []string       `json:"user_handles"`
	Counters            []uint32       `json:"counters"`
	HMACFirst           []string       `json:"hmac_first"`
	HMACAgain           []string       `json:"hmac_again"`
	HMACOtherSalt       []string       `json:"hmac_other_salt"`
	HMACBob             []string       `json:"hmac_bob"`
	PRFFirst            []string       `json:"prf_first"`
	PRFAgain            []string       `json:"prf_again"`
	Credman             credmanResult  `json:"credman"`
	CredmanPreview      credmanResult  `json:"credman_preview"`
	RenameOtherUser     string         `json:"rename_other_user"`
	AfterDelete         []string       `json:"after_delete"`
	DiscoveredAfter     []string       `json:"discovered_after_delete"`
}

type credmanResult struct {
	Existing    int      `json:"existing"`
	Remaining   int      `json:"remaining"`
	RPs         []string `json:"rps"`
	Users       []string `json:"users"`
	CredProtect []int    `json:"cred_protect"`
}

// TestPythonFIDO2TwoAccountsHMACSecretAndCredentialManagement: the CTAP
// 2.1 commands a YubiKey answers, driven by python-fido2 through pcscd.
func TestPythonFIDO2TwoAccountsHMACSecretAndCredentialManagement(t *testing.T) {
	_, soft := plugFIDO2Key(t, &offsetClock{})
	var r accountsResult
	ctap21(t, "accounts", &r)
	t.Run("a discoverable sign-in returns both accounts, newest first", func(t *testing.T) {
		if !slices.Equal(r.Discovered, []string{"bob", "alice"}) || r.NumberOfCredentials != 2 ||
			!slices.Equal(r.UserHandles, []string{"user-bob", "user-alice"}) {
			t.Fatalf("accounts %v (%d), handles %v", r.Discovered, r.NumberOfCredentials, r.UserHandles)
		}
		if len(r.Counters) != 2 || r.Counters[1] != r.Counters[0]+1 {
			t.Fatalf("each assertion counts: %v", r.Counters)
		}
	})
	t.Run("hmac-secret outputs are stable across assertions and differ by salt and credential", func(t *testing.T) {
		if r.CreatedExt["hmacCreateSecret"] != true || len(r.HMACFirst) != 2 || len(r.HMACFirst[0]) != 64 {
			t.Fatalf("created %v, outputs %v", r.CreatedExt, r.HMACFirst)
		}
		if !slices.Equal(r.HMACFirst, r.HMACAgain) || !slices.Equal(r.PRFFirst, r.PRFAgain) {
			t.Fatalf("outputs changed between assertions: %v %v, %v %v", r.HMACFirst, r.HMACAgain, r.PRFFirst, r.PRFAgain)
		}
		if r.HMACFirst[0] == r.HMACFirst[1] || r.HMACOtherSalt[0] != r.HMACFirst[1] || r.HMACBob[0] == r.HMACFirst[0] {
			t.Fatalf("outputs do not follow salt and credential: %v %v %v", r.HMACFirst, r.HMACOtherSalt, r.HMACBob)
		}
	})
	t.Run("credential management lists, renames and deletes, over 0x0A and the 0x41 preview", func(t *testing.T) {
		want := credmanResult{Existing: 2, Remaining: 98, RPs: []string{"keyfleet.test"}, Users: []string{"alice", "bob"}, CredProtect: []int{2, 1}}
		if !sameCredman(r.Credman, want) {
			t.Fatalf("credential management %+v, want %+v", r.Credman, want)
		}
		want.Users = []string{"alice", "robert"}
		if !sameCredman(r.CredmanPreview, want) || r.RenameOtherUser != "INVALID_PARAMETER" {
			t.Fatalf("preview %+v after a rename; another user's id: %q", r.CredmanPreview, r.RenameOtherUser)
		}
		if !slices.Equal(r.AfterDelete, []string{"alice"}) || !slices.Equal(r.DiscoveredAfter, []string{"alice"}) {
			t.Fatalf("after deleting bob: listed %v, discovered %v", r.AfterDelete, r.DiscoveredAfter)
		}
	})
	if n, _ := soft.PINRetries(); n != 8 {
		t.Fatalf("PIN retries %d", n)
	}
}

func sameCredman(a, b credmanResult) bool {
	return a.Existing == b.Existing && a.Remaining == b.Remaining && slices.Equal(a.RPs, b.RPs) &&
		slices.Equal(a.Users, b.Users) && slices.Equal(a.CredProtect, b.CredProtect)
}

// TestPythonFIDO2ThreeWrongPINsBlockUntilReplugged: malware on the
// workstation cannot use up the PIN's eight tries: after three wrong PINs
// in a row the key refuses every PIN, the right one too, until it is
// unplugged and plugged in again.
func TestPythonFIDO2ThreeWrongPINsBlockUntilReplugged(t *testing.T) {
	fca, err := fido2.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	soft, err := fido2.NewSoft(fido2.SoftOptions{CA: fca, Path: filepath.Join(t.TempDir(), "fido2.json")})
	if err != nil {
		t.Fatal(err)
	}
	card, err := vkey.New(vkey.Options{CA: mustCA(t), FIDO2: soft})
	if err != nil {
		t.Fatal(err)
	}
	unplug := plugExisting(t, card)
	var r struct {
		Wrong      []string `json:"wrong"`
		Right      string   `json:"right"`
		Retries    int      `json:"retries"`
		PowerCycle bool     `json:"power_cycle"`
	}
	ctap21(t, "pinblock", &r)
	if !slices.Equal(r.Wrong, []string{"PIN_INVALID", "PIN_INVALID", "PIN_AUTH_BLOCKED"}) || r.Right != "PIN_AUTH_BLOCKED" ||
		r.Retries != 5 || !r.PowerCycle {
		t.Fatalf("three wrong PINs: %+v", r)
	}
	unplug()
	plugExisting(t, card)
	ctap21(t, "pinafter", &r)
	if r.Right != "OK" || r.Retries != 8 || r.PowerCycle {
		t.Fatalf("after plugging the key in again: %+v", r)
	}
}

// plugExisting plugs card into slot 0 and returns its unplug.
func plugExisting(t *testing.T, card *vkey.Card) func() {
	t.Helper()
	unplug, err := pcsc.Plug(card, 0)
	if err != nil {
		t.Fatal(err)
	}
	var once atomic.Bool
	u := func() {
		if once.CompareAndSwap(false, true) {
			unplug()
		}
	}
	t.Cleanup(u)
	openWhenReady(t, pcsc.Slots[0].Reader).Close()
	return u
}

// TestPythonFIDO2ResetOnlyJustAfterPlugging: authenticatorReset wipes the
// FIDO2 application within 5 s of the key being plugged in, as a YubiKey;
// later it is refused and nothing changes.
func TestPythonFIDO2ResetOnlyJustAfterPlugging(t *testing.T) {
	type resetResult struct {
		Before struct {
			ClientPIN bool `json:"client_pin"`
			Remaining int  `json:"remaining_disc_creds"`
		} `json:"before"`
		Reset string `json:"reset"`
		After struct {
			ClientPIN bool `json:"client_pin"`
			Remaining int  `json:"remaining_disc_creds"`
		} `json:"after"`
		SignIn string `json:"sign_in"`
	}
	t.Run("six seconds after plugging in it is refused", func(t *testing.T) {
		clock := &offsetClock{}
		_, soft := plugFIDO2Key(t, clock)
		if err := soft.SetPIN("24681357"); err != nil {
			t.Fatal(err)
		}
		clock.advance(6 * time.Second)
		var r resetResult
		ctap21(t, "reset", &r)
		if r.Reset != "NOT_ALLOWED" || !r.Before.ClientPIN {
			t.Fatalf("late reset: %+v", r)
		}
		if info, _ := soft.Info(); !info.PINSet {
			t.Fatal("a refused reset removed the PIN")
		}
	})
	t.Run("at once after plugging in it wipes credentials and PIN", func(t *testing.T) {
		_, soft := plugFIDO2Key(t, &offsetClock{})
		if err := soft.SetPIN("24681357"); err != nil {
			t.Fatal(err)
		}
		makeResident(t, soft)
		var r resetResult
		ctap21(t, "reset", &r)
		if r.Reset != "OK" || !r.Before.ClientPIN || r.Before.Remaining != 99 || r.After.ClientPIN ||
			r.After.Remaining != 100 || r.SignIn != "NO_CREDENTIALS" {
			t.Fatalf("reset: %+v", r)
		}
	})
}

// makeResident makes one discoverable credential on soft (PIN 24681357).
func makeResident(t *testing.T, soft *fido2.Soft) {
	t.Helper()
	cdh := sha256.Sum256([]byte("client data"))
	_, err := soft.MakeCredential(agent.MakeCredentialRequest{ClientDataHash: cdh[:], RPID: "keyfleet.test",
		UserID: []byte("u1"), UserName: "alice", Algorithms: []int{-7}, ResidentKey: true, PIN: "24681357"})
	if err != nil {
		t.Fatal(err)
	}
}
