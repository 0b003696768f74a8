package pam_test

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// sshd is OpenSSH's server on a loopback port with a private config and
// host key: public key first, then keyboard-interactive through PAM, whose
// service is pam_keyfleet.so. sshd names its PAM service after the name it
// runs under, so it runs under a link named after a test's own service.
type sshd struct {
	addr, dir string
	clientKey string
	cmd       *exec.Cmd
	log       string
}

func startSSHD(t *testing.T, service string, users ...string) *sshd {
	t.Helper()
	asRoot(t)
	bin := need(t, "/usr/sbin/sshd", "openssh-server")
	need(t, "ssh", "openssh-client")
	need(t, "ssh-keygen", "openssh-client")
	s := &sshd{dir: t.TempDir()}
	s.clientKey = filepath.Join(s.dir, "id_ed25519")
	for _, key := range []string{filepath.Join(s.dir, "host_ed25519"), s.clientKey} {
		if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key).CombinedOutput(); err != nil {
			t.Fatalf("ssh-keygen: %v %s", err, out)
		}
	}
	conf := s.configure(t, users)
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil { // sshd's privilege separation folder
		t.Fatal(err)
	}
	link := filepath.Join(s.dir, service) // the PAM service's name
	if err := os.Symlink(bin, link); err != nil {
		t.Fatal(err)
	}
	s.log = filepath.Join(s.dir, "sshd.log")
	s.cmd = exec.Command(link, "-D", "-f", conf, "-E", s.log)
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.cmd.Process.Kill(); s.cmd.Wait() })
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("tcp", s.addr); err == nil {
			c.Close()
			return s
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(s.log)
			t.Fatalf("sshd did not listen within 10s:\n%s", b)
		}
	}
}

// configure writes the server's config, and every user's authorized key
// into a folder everyone may read (sshd reads it as the user).
func (s *sshd) configure(t *testing.T, users []string) string {
	t.Helper()
	pub, _ := os.ReadFile(s.clientKey + ".pub")
	keys, err := os.MkdirTemp("", "keyfleet-sshd-keys-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(keys) })
	os.Chmod(keys, 0o755)
	for _, u := range users {
		os.WriteFile(filepath.Join(keys, u), pub, 0o644)
	}
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	s.addr = l.Addr().String()
	l.Close()
	_, port, _ := net.SplitHostPort(s.addr)
	conf := filepath.Join(s.dir, "sshd_config")
	os.WriteFile(conf, []byte(fmt.Sprintf(`Port %s
ListenAddress 127.0.0.1
HostKey %s/host_ed25519
PidFile %s/sshd.pid
AuthorizedKeysFile %s/%%u
StrictModes no
UsePAM yes
PubkeyAuthentication yes
KbdInteractiveAuthentication yes
PasswordAuthentication no
AuthenticationMethods publickey,keyboard-interactive
PermitRootLogin no
LogLevel VERBOSE
`, port, s.dir, s.dir, keys)), 0o600)
	return conf
}

// login runs "echo signed-in" over ssh as user, with the public key and,
// for keyboard-interactive, an askpass program that answers every prompt
// with answer and notes the prompt. It returns whether the command ran,
// what ssh printed, and the prompts it was asked.
func (s *sshd) login(t *testing.T, user, answer string) (bool, string, string) {
	t.Helper()
	dir := t.TempDir()
	prompts := filepath.Join(dir, "prompts")
	askpass := filepath.Join(dir, "askpass")
	os.WriteFile(askpass, []byte(fmt.Sprintf("#!/bin/sh\nprintf '%%s\\n' \"$1\" >> %s\nprintf '%%s\\n' '%s'\n", prompts, answer)), 0o700)
	_, port, _ := net.SplitHostPort(s.addr)
	cmd := exec.Command("ssh", "-F", "none", "-p", port, "-i", s.clientKey, "-o", "IdentitiesOnly=yes",
		"-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=INFO", // INFO shows the PAM messages (keyboard-interactive instructions)

		"-o", "PreferredAuthentications=publickey,keyboard-interactive", "-o", "NumberOfPasswordPrompts=1",
		"-o", "ConnectTimeout=10", user+"@127.0.0.1", "echo signed-in")
	cmd.Env = append(os.Environ(), "SSH_ASKPASS="+askpass, "SSH_ASKPASS_REQUIRE=force", "DISPLAY=")
	cmd.Stdin = nil
	out, _ := cmd.CombinedOutput()
	asked, _ := os.ReadFile(prompts)
	return strings.Contains(string(out), "signed-in"), string(out), string(asked)
}

func TestSSHDKeyboardInteractiveAsksForTheCode(t *testing.T) {
	so, helper := module(t)
	k := startKeyfleetd(t, false)
	withFactor, without := unixUser(t), unixUser(t)
	k.person(withFactor)
	k.person(without)
	seed := k.totpFactor(withFactor, "Phone")
	service := pamService(t, so, k.args(helper))
	s := startSSHD(t, service, withFactor, without)

	if ok, out, asked := s.login(t, withFactor, code(seed, 0)); !ok || !strings.Contains(asked, "keyfleet code from Phone (totp)") {
		b, _ := os.ReadFile(s.log)
		t.Fatalf("the right code: %v\nssh: %s\nprompts: %s\nsshd log:\n%s", ok, out, asked, b)
	}
	ok, out, _ := s.login(t, withFactor, "000000")
	if ok || !strings.Contains(out, "wrong code") {
		t.Fatalf("a wrong code let in or said nothing:\n%s", out)
	}
	t.Logf("what ssh shows for a wrong code:\n%s", out)
	if ok, out, asked := s.login(t, without, ""); !ok || asked != "" {
		t.Fatalf("a user the policy does not ask yet: %v, asked %q\n%s", ok, asked, out)
	}
	k.stop()
	ok, out, _ = s.login(t, withFactor, code(seed, 1))
	if ok || !strings.Contains(out, "keyfleet cannot be reached") {
		t.Fatalf("keyfleetd down:\n%s", out)
	}
	t.Logf("what ssh shows while keyfleetd is down:\n%s", out)
}
