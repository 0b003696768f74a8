package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	agentfido2 "github.com/keyfleet/keyfleet/agent/fido2"
	"github.com/keyfleet/keyfleet/agent/vkey"
	"github.com/keyfleet/keyfleet/agent/vkey/vkeytest"
	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/api/client"
	"github.com/keyfleet/keyfleet/daemon"
	"github.com/keyfleet/keyfleet/daemon/core"
	pivkind "github.com/keyfleet/keyfleet/daemon/kinds/piv"
	"github.com/keyfleet/keyfleet/plugins/sdk"
)

var (
	// pcsc is the one private pcscd of this test binary; a test that
	// plugs a key fails when it could not start (pcsc.Need names the
	// packages to install).
	pcsc *vkeytest.Shared
	// agentBinDir holds the keyfleet-agent binary the proof tests build.
	agentBinDir string
)

func TestMain(m *testing.M) {
	pcsc = vkeytest.StartShared()
	code := m.Run()
	pcsc.Stop()
	if agentBinDir != "" {
		os.RemoveAll(agentBinDir)
	}
	os.Exit(code)
}

// testDaemon is a real keyfleetd (the daemon package, served on loopback
// in this process) with the piv kind trusting roots.
type testDaemon struct {
	addr, dir, tokenFile, caFile string
	admin                        *client.Client
	// svc is the daemon's domain, for tests that stand in for people who
	// are not at this desk (the second approver of a departure, say).
	svc *core.Service
}

func startDaemon(t *testing.T, roots ...*x509.Certificate) *testDaemon {
	t.Helper()
	kind, err := pivkind.New(pivkind.Config{Roots: roots})
	if err != nil {
		t.Fatal(err)
	}
	return serve(t, daemon.Options{Kinds: []sdk.Factor{kind}})
}

// serve initialises a data directory and serves a keyfleetd with o on
// loopback until the test ends. o.LogOut defaults to nowhere.
func serve(t testing.TB, o daemon.Options) *testDaemon {
	t.Helper()
	d, _ := serveInit(t, o, daemon.InitOptions{})
	return d
}

// serveInit is serve with init's options (founding administrators,
// break-glass shares); it returns what init made too.
func serveInit(t testing.TB, o daemon.Options, in daemon.InitOptions) (*testDaemon, daemon.InitResult) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	in.Dir, in.Getenv = dir, func(string) string { return "" }
	res, err := daemon.Init(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	if o.LogOut == nil {
		o.LogOut = io.Discard
	}
	o.Getenv = func(string) string { return "" }
	srv, err := daemon.New(daemon.Config{DataDir: dir}, o)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln, nil) }()
	t.Cleanup(func() { cancel(); <-done })
	d := &testDaemon{addr: "https://" + ln.Addr().String(), dir: dir, tokenFile: res.AdminTokenFile, caFile: res.TLSCert, svc: srv.Service()}
	d.admin = d.client(t, res.AdminTokenFile)
	return d, res
}

func (d *testDaemon) client(t testing.TB, tokenFile string) *client.Client {
	t.Helper()
	tok, _ := os.ReadFile(tokenFile)
	ca, _ := os.ReadFile(d.caFile)
	c, err := client.New(client.Config{Server: d.addr, Token: strings.TrimSpace(string(tok)), CAPEM: ca})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// deskToken is the token the IT desk provisions keys with: the founding
// administrator's, which keyfleetd init wrote. Nobody mints a token for
// another person (an enroller signs in with their own key, as
// TestKeyLoginGivesAWorkingTokenThatExpires shows for an administrator).
func (d *testDaemon) deskToken(testing.TB) string { return d.tokenFile }

func plug(t testing.TB, o vkey.Options) *vkey.Card {
	t.Helper()
	pcsc.Need(t)
	card, err := vkey.New(o)
	if err != nil {
		t.Fatal(err)
	}
	unplug, err := pcsc.Plug(card, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(unplug)
	// Wait until a PC/SC client can open it, as the agent will.
	yk, err := vkeytest.OpenWhenReady(pcsc.Slots[0].Reader)
	if err != nil {
		t.Fatal(err)
	}
	yk.Close()
	return card
}

func agentRun(t *testing.T, d *testDaemon, token string, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	all := append([]string{"provision", "--server", d.addr, "--token-file", token, "--ca", d.caFile, "--reader", pcsc.Slots[0].Reader}, args...)
	code := run(context.Background(), all, &out, &errb, func(string) string { return "" })
	return out.String(), errb.String(), code
}

func TestProvisionPIVEndToEnd(t *testing.T) {
	ca, _ := vkey.NewCA(nil)
	card := plug(t, vkey.Options{CA: ca, Serial: 40000001})
	d := startDaemon(t, ca.Root())
	token := d.deskToken(t)
	if _, err := d.admin.CreateUser(context.Background(), api.CreateUser{Username: "alice"}); err != nil {
		t.Fatal(err)
	}
	pinFile := filepath.Join(t.TempDir(), "pin")
	os.WriteFile(pinFile, []byte("24681357\n"), 0o600)
	before, start := card.APDUs(), time.Now()
	out, errOut, code := agentRun(t, d, token, "--user", "alice", "--pin-file", pinFile)
	if code != 0 {
		t.Fatalf("exit %d: %s %s", code, out, errOut)
	}
	t.Logf("provisioned one virtual key in %v with %d APDUs", time.Since(start).Round(time.Millisecond), card.APDUs()-before)
	if !strings.Contains(out, "provisioned YubiKey 40000001") || strings.Contains(out+errOut, "24681357") {
		t.Fatalf("output %q", out)
	}
	checkFactor(t, d, "alice", "active")
	// The same key again: it is no longer factory fresh.
	_, errOut, code = agentRun(t, d, token, "--user", "alice")
	if code != 1 || !strings.Contains(errOut, "--reset") {
		t.Fatalf("a provisioned key without --reset: exit %d: %s", code, errOut)
	}
}

func checkFactor(t *testing.T, d *testDaemon, user, state string) {
	t.Helper()
	pg, err := d.admin.ListFactors(context.Background(), client.FactorFilter{User: user})
	if err != nil || len(pg.Items) != 1 {
		t.Fatalf("factors of %s: %+v %v", user, pg, err)
	}
	f := pg.Items[0]
	var ev struct {
		Serial uint32 `json:"serial"`
	}
	json.Unmarshal(f.Evidence, &ev)
	if f.Kind != "piv" || f.State != state || f.DeviceID == "" || ev.Serial != 40000001 {
		t.Fatalf("factor %+v", f)
	}
}

func TestProvisionHandoverLeavesThePINToActivate(t *testing.T) {
	ca, _ := vkey.NewCA(nil)
	plug(t, vkey.Options{CA: ca, Serial: 40000001})
	d := startDaemon(t, ca.Root())
	token := d.deskToken(t)
	d.admin.CreateUser(context.Background(), api.CreateUser{Username: "bob"})
	out, errOut, code := agentRun(t, d, token, "--user", "bob")
	if code != 0 || !strings.Contains(out, "hand-over PIN") {
		t.Fatalf("exit %d: %s %s", code, out, errOut)
	}
	checkFactor(t, d, "bob", "pending")
}

func TestProvisionRejectsAnUntrustedKey(t *testing.T) {
	plug(t, vkey.Options{CA: mustCA(t)})
	d := startDaemon(t) // trusts Yubico only, not the virtual CA
	token := d.deskToken(t)
	d.admin.CreateUser(context.Background(), api.CreateUser{Username: "carol"})
	_, errOut, code := agentRun(t, d, token, "--user", "carol", "--reset")
	if code != 1 || !strings.Contains(errOut, "untrusted") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	pg, _ := d.admin.ListFactors(context.Background(), client.FactorFilter{User: "carol"})
	if len(pg.Items) != 0 {
		t.Fatalf("a rejected key left a factor: %+v", pg.Items)
	}
}

func TestDevicesListsTheVirtualKeyAndItsApplets(t *testing.T) {
	tests := []struct {
		name    string
		fido2   bool
		applets string
	}{
		{"a PIV-only key", false, "applets piv,management\n"},
		{"a key with a FIDO2 applet", true, "applets piv,management,fido2\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := vkey.Options{CA: mustCA(t), Serial: 40000077, FormFactor: 0x03}
			if tt.fido2 {
				fca, _ := agentfido2.NewCA()
				soft, err := agentfido2.NewSoft(agentfido2.SoftOptions{CA: fca, Serial: 40000077})
				if err != nil {
					t.Fatal(err)
				}
				o.FIDO2 = soft
			}
			plug(t, o)
			var out, errb bytes.Buffer
			if code := run(context.Background(), []string{"devices"}, &out, &errb, os.Getenv); code != 0 {
				t.Fatalf("exit %d: %s", code, errb.String())
			}
			for _, want := range []string{"serial 40000077", "firmware 5.7.4", "USB-C Keychain", tt.applets} {
				if !strings.Contains(out.String(), want) {
					t.Fatalf("devices printed no %q: %s", want, out.String())
				}
			}
		})
	}
}

func mustCA(t *testing.T) *vkey.CA {
	ca, err := vkey.NewCA(nil)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}
