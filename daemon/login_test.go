package daemon_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon"
	"github.com/keyfleet/keyfleet/daemon/core"
	"github.com/keyfleet/keyfleet/plugins/sdk"
	"github.com/keyfleet/keyfleet/plugins/totp"
)

func TestKeyfleetdServesRADIUSFromItsConfigFile(t *testing.T) {
	radclient, err := exec.LookPath("radclient")
	if err != nil {
		t.Fatal("radclient is not installed: apt-get install freeradius-utils (scripts/deps.sh does)")
	}
	dir := filepath.Join(t.TempDir(), "data")
	if _, err := daemon.Init(context.Background(), daemon.InitOptions{Dir: dir}); err != nil {
		t.Fatal(err)
	}
	secret := filepath.Join(dir, "vpn.secret")
	os.WriteFile(secret, []byte("a-long-shared-secret-for-the-vpn\n"), 0o600)
	udp, _ := net.ListenPacket("udp", "127.0.0.1:0")
	addr := udp.LocalAddr().String()
	udp.Close()
	yaml := fmt.Sprintf("radius:\n  enabled: true\n  listen: %s\n  clients:\n    - name: vpn\n      networks: [127.0.0.1]\n      secret_file: %s\n", addr, secret)
	var cfg daemon.Config
	os.WriteFile(filepath.Join(dir, "keyfleetd.yaml"), []byte(yaml), 0o600)
	if err := cfg.LoadFile(filepath.Join(dir, "keyfleetd.yaml")); err != nil {
		t.Fatal(err)
	}
	cfg.DataDir, cfg.Listen = dir, "127.0.0.1:0"
	srv, err := daemon.New(cfg, daemon.Options{LogOut: io.Discard, Kinds: []sdk.Factor{totp.Factor{}}})
	if err != nil {
		t.Fatal(err)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln, nil) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("keyfleetd: %v", err)
		}
	}()
	now := enrolTOTPUser(t, srv, "vera")
	sf := filepath.Join(t.TempDir(), "s")
	os.WriteFile(sf, []byte("a-long-shared-secret-for-the-vpn\n"), 0o600)
	// The listener binds as Serve starts: poll until it answers.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		cmd := exec.Command(radclient, "-t", "0.3", "-r", "1", "-S", sf, addr, "status")
		cmd.Stdin = strings.NewReader("Message-Authenticator = 0x00\n")
		if out, _ := cmd.CombinedOutput(); strings.Contains(string(out), "Access-Accept") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("keyfleetd's RADIUS listener did not answer within 10s")
		}
	}
	cmd := exec.Command(radclient, "-x", "-t", "1", "-r", "1", "-S", sf, addr, "auth")
	cmd.Stdin = strings.NewReader(fmt.Sprintf("User-Name = vera\nUser-Password = %s\nMessage-Authenticator = 0x00\n", now))
	if out, _ := cmd.CombinedOutput(); !strings.Contains(string(out), "Received Access-Accept") {
		t.Fatalf("a fresh code through keyfleetd's listener:\n%s", out)
	}
}

// enrolTOTPUser creates a user with a TOTP factor on srv and returns the
// current step's code (the factor was enrolled with the previous one's).
func enrolTOTPUser(t *testing.T, srv *daemon.Server, user string) string {
	t.Helper()
	ctx, svc := context.Background(), srv.Service()
	if _, _, err := svc.CreateUser(ctx, core.System, api.CreateUser{Username: user}); err != nil {
		t.Fatal(err)
	}
	en, _, err := svc.CreateEnrolment(ctx, core.System, api.CreateEnrolment{User: user, Kind: "totp"})
	if err != nil {
		t.Fatal(err)
	}
	display := svc.UserDisplay(en) // sealed for the user: the test reads it as them
	old, _ := totp.Code(display["secret"], "SHA1", 6, 30, time.Now().Add(-30*time.Second))
	body, _ := json.Marshal(map[string]string{"code": old})
	if _, err := svc.CompleteEnrolment(ctx, core.System, en.ID, api.CompleteEnrolment{Payload: body}); err != nil {
		t.Fatal(err)
	}
	now, _ := totp.Code(display["secret"], "SHA1", 6, 30, time.Now())
	return now
}
