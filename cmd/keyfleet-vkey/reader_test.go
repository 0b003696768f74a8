package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyfleet/keyfleet/agent/vkey/vkeytest"
	"github.com/keyfleet/keyfleet/agent/vkey/vpcdconf"
)

func needVPCD(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(vpcdconf.DebianDriver); err != nil {
		t.Fatalf("vpcd's driver is missing (%v): apt-get install vsmartcard-vpcd (make deps does)", err)
	}
}

func TestReaderSetupWritesAOneSlotDriverAndItsReader(t *testing.T) {
	needVPCD(t)
	dir := t.TempDir()
	lib, conf := filepath.Join(dir, "lib"), filepath.Join(dir, "conf")
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"reader", "setup", "--driver-dir", lib, "--conf-dir", conf, "--port", "40123"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	driver := filepath.Join(lib, "libifdvpcd-oneslot-40123.so")
	entry, _ := os.ReadFile(filepath.Join(conf, "keyfleet-vkey-40123"))
	want := "FRIENDLYNAME \"Yubico YubiKey OTP+FIDO+CCID (keyfleet vkey)\"\nDEVICENAME /dev/null:40123\nLIBPATH " + driver + "\nCHANNELID 40123\n"
	if string(entry) != want {
		t.Fatalf("the reader's entry:\n%s\nwant:\n%s", entry, want)
	}
	stock, _ := os.ReadFile(vpcdconf.DebianDriver)
	copied, err := os.ReadFile(driver)
	if err != nil || len(copied) != len(stock) {
		t.Fatalf("the driver copy: %v", err)
	}
	var changed []int
	for i := range stock {
		if stock[i] != copied[i] {
			changed = append(changed, i)
		}
	}
	if len(changed) != 1 || stock[changed[0]] != 2 || copied[changed[0]] != 1 {
		t.Fatalf("the copy differs from Debian's driver at %v; want one byte, the slot count 2 made 1", changed)
	}
	for _, s := range []string{"sudo pcscd -f -c " + conf, "keyfleet-vkey serve --vpcd 127.0.0.1:40123", "ykman info", "To undo: rm "} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("setup did not say %q:\n%s", s, out.String())
		}
	}
}

func TestReaderSetupRefusesBadInputAndWritesNothing(t *testing.T) {
	needVPCD(t)
	notADriver := filepath.Join(t.TempDir(), "not-vpcd.so")
	os.WriteFile(notADriver, []byte("\x7fELF but not a driver"), 0o644)
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"a port out of range", []string{"--port", "70000"}, "port 70000: want 1 to 65535"},
		{"a name with a quote", []string{"--name", `Yubico "x"`}, "reader name"},
		{"a relative driver folder", []string{"--driver-dir", "lib"}, "want an absolute driver folder"},
		{"a driver that is not vpcd's", []string{"--driver", notADriver}, "cannot make a one-slot copy of the vpcd driver"},
		{"no driver at all", []string{"--driver", notADriver + ".missing"}, "apt-get install vsmartcard-vpcd"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			args := append([]string{"reader", "setup", "--driver-dir", filepath.Join(dir, "lib"), "--conf-dir", filepath.Join(dir, "conf")}, c.args...)
			var out, errb bytes.Buffer
			if code := run(context.Background(), args, &out, &errb); code == 0 || !strings.Contains(errb.String(), c.want) {
				t.Fatalf("exit %d, stderr %q; want a refusal saying %q", code, errb.String(), c.want)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Fatalf("a refused setup wrote %v", entries)
			}
		})
	}
}

// TestAHandRunKeyShowsAsOneYubiKey walks the demo docs/agent.md gives: set
// up the reader, start pcscd with it, serve a virtual key by hand, and
// run Yubico's ykman without --device. It finds one YubiKey, as with a USB
// one, not two ("Multiple YubiKeys detected", as in Debian's stock
// two-slot vpcd reader).
func TestAHandRunKeyShowsAsOneYubiKey(t *testing.T) {
	needVPCD(t)
	ykman, err := exec.LookPath("ykman")
	if err != nil {
		t.Fatal("ykman is not installed: apt-get install yubikey-manager (make deps does)")
	}
	dir := t.TempDir()
	port := freePort(t)
	conf := filepath.Join(dir, "conf")
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"reader", "setup", "--driver-dir", filepath.Join(dir, "lib"), "--conf-dir", conf, "--port", fmt.Sprint(port)}, &out, &errb); code != 0 {
		t.Fatalf("reader setup: exit %d: %s", code, errb.String())
	}
	pcscd, err := vkeytest.StartPCSCDWith(conf)
	if err != nil {
		t.Fatal(err)
	}
	defer pcscd.Stop()
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan int, 1)
	go func() {
		served <- run(ctx, []string{"serve", "--vpcd", fmt.Sprintf("127.0.0.1:%d", port), "--serial", "40000123",
			"--state", filepath.Join(dir, "card.json"), "--ca", filepath.Join(dir, "ca.pem"),
			"--fido2-state", filepath.Join(dir, "fido2.json"), "--fido2-ca", filepath.Join(dir, "fido2-ca.pem")}, io.Discard, io.Discard)
	}()
	defer func() { cancel(); <-served }()

	list := waitForYkmanList(t, ykman)
	if lines := strings.Split(strings.TrimSpace(list), "\n"); len(lines) != 1 || !strings.Contains(lines[0], "Serial: 40000123") {
		t.Fatalf("ykman list shows %d lines; want the one key:\n%s", len(lines), list)
	}
	info, err := exec.Command(ykman, "info").CombinedOutput()
	if err != nil || !strings.Contains(string(info), "Serial number: 40000123") || strings.Contains(string(info), "Multiple") {
		t.Fatalf("ykman info without --device: %v\n%s", err, info)
	}
}

// waitForYkmanList polls ykman list until it shows a key: pcscd polls its
// readers, so a key just served can take a moment to appear.
func waitForYkmanList(t *testing.T, ykman string) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, _ := exec.Command(ykman, "list").CombinedOutput()
		if strings.Contains(string(out), "Serial:") {
			return string(out)
		}
		if time.Now().After(deadline) {
			t.Fatalf("ykman never listed the served key:\n%s", out)
		}
		time.Sleep(100 * time.Millisecond) // polling interval
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
