package pam_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon"
	"github.com/keyfleet/keyfleet/daemon/audit"
	"github.com/keyfleet/keyfleet/daemon/core"
	pushkind "github.com/keyfleet/keyfleet/plugins/push"
	"github.com/keyfleet/keyfleet/plugins/sdk"
	"github.com/keyfleet/keyfleet/plugins/totp"
)

// The kit for the tests that run the real module: pam_keyfleet.so and
// its helper built from this tree, keyfleetd on a loopback port, PAM
// service files and Unix accounts that exist only for a test.

// need fails the test when a program is missing, naming its package.
func need(t *testing.T, program, pkg string) string {
	t.Helper()
	path, err := exec.LookPath(program)
	if err != nil {
		t.Fatalf("%s is not installed: apt-get install %s (scripts/deps.sh does)", program, pkg)
	}
	return path
}

// asRoot fails the test unless it runs as root: PAM service files live in
// /etc/pam.d, and sshd switches to the user it logs in.
func asRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("this test writes /etc/pam.d and creates Unix accounts: run it as root (make test does, as root)")
	}
}

var built struct {
	once           sync.Once
	dir            string
	module, helper string
	err            error
}

// module builds pam_keyfleet.so and keyfleet-pam-helper once per test
// binary, into a folder only root may write.
func module(t *testing.T) (so, helper string) {
	t.Helper()
	need(t, "gcc", "gcc")
	if _, err := os.Stat("/usr/include/security/pam_modules.h"); err != nil {
		t.Fatal("PAM's headers are missing: apt-get install libpam0g-dev (scripts/deps.sh does)")
	}
	built.once.Do(func() {
		built.dir, built.err = os.MkdirTemp("", "keyfleet-pam-")
		if built.err != nil {
			return
		}
		built.module = filepath.Join(built.dir, "pam_keyfleet.so")
		built.helper = filepath.Join(built.dir, "keyfleet-pam-helper")
		_, file, _, _ := runtime.Caller(0)
		src := filepath.Join(filepath.Dir(file), "module", "pam_keyfleet.c")
		for _, cmd := range []*exec.Cmd{
			exec.Command("gcc", "-shared", "-fPIC", "-O2", "-Wall", "-Wextra", "-Werror", "-o", built.module, src, "-lpam"),
			exec.Command("go", "build", "-o", built.helper, "github.com/keyfleet/keyfleet/cmd/keyfleet-pam-helper"),
		} {
			if out, err := cmd.CombinedOutput(); err != nil {
				built.err = fmt.Errorf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, out)
				return
			}
		}
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.module, built.helper
}

func TestMain(m *testing.M) {
	code := m.Run()
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
	os.Exit(code)
}

// keyfleetd is a real daemon on a loopback port with the TOTP and push
// kinds.
type keyfleetd struct {
	t         *testing.T
	url       string
	caFile    string
	tokenFile string // a service token, root-only
	svc       *core.Service
	logs      *output // keyfleetd's log
	token     string  // the service token's secret
	stop      func()  // idempotent
	cfg       daemon.Config
	spool     string // the module's spool_dir
}

func startKeyfleetd(t *testing.T, firstLogin bool) *keyfleetd {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	if _, err := daemon.Init(context.Background(), daemon.InitOptions{Dir: dir}); err != nil {
		t.Fatal(err)
	}
	k := &keyfleetd{t: t, caFile: filepath.Join(dir, "tls", "cert.pem"), logs: newOutput(), cfg: daemon.Config{DataDir: dir, Listen: "127.0.0.1:0"},
		spool: filepath.Join(t.TempDir(), "spool")}
	k.cfg.FirstLogin.Enabled = firstLogin
	k.serve("127.0.0.1:0")
	ctx := context.Background()
	if _, _, err := k.svc.CreateUser(ctx, core.System, api.CreateUser{Username: "login-host", Kind: api.KindService, Roles: []string{api.RoleLoginHost}}); err != nil {
		t.Fatal(err)
	}
	_, secret, err := k.svc.CreateToken(ctx, core.System, api.CreateToken{User: "login-host", Name: "pam"})
	if err != nil {
		t.Fatal(err)
	}
	k.token = secret
	k.tokenFile = filepath.Join(t.TempDir(), "pam.token")
	os.WriteFile(k.tokenFile, []byte(secret+"\n"), 0o600)
	return k
}

// serve starts keyfleetd on addr.
func (k *keyfleetd) serve(addr string) {
	k.t.Helper()
	srv, err := daemon.New(k.cfg, daemon.Options{LogOut: k.logs, Kinds: []sdk.Factor{totp.Factor{}, pushkind.Factor{}}})
	if err != nil {
		k.t.Fatal(err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		k.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln, nil) }()
	k.url, k.svc = "https://"+ln.Addr().String(), srv.Service()
	var once sync.Once
	k.stop = func() { once.Do(func() { cancel(); <-done }) }
	k.t.Cleanup(k.stop)
}

// restart starts keyfleetd again, after stop, on the same address and
// data.
func (k *keyfleetd) restart() {
	k.t.Helper()
	k.stop()
	k.serve(strings.TrimPrefix(k.url, "https://"))
}

// events are the audit events of one action, oldest first.
func (k *keyfleetd) events(action string) []audit.Event {
	k.t.Helper()
	recs, err := k.svc.ListAudit(context.Background(), core.System, core.AuditFilter{Action: action}, 1000)
	if err != nil {
		k.t.Fatal(err)
	}
	var out []audit.Event
	for _, r := range recs {
		ev, err := r.Event()
		if err != nil {
			k.t.Fatal(err)
		}
		out = append(out, ev)
	}
	return out
}

func (k *keyfleetd) person(name string) {
	k.t.Helper()
	if _, _, err := k.svc.CreateUser(context.Background(), core.System, api.CreateUser{Username: name}); err != nil {
		k.t.Fatal(err)
	}
}

// totpFactor enrols a TOTP factor with the previous step's code and
// returns its seed.
func (k *keyfleetd) totpFactor(user, label string) string {
	k.t.Helper()
	ctx := context.Background()
	en, _, err := k.svc.CreateEnrolment(ctx, core.System, api.CreateEnrolment{User: user, Kind: "totp"})
	if err != nil {
		k.t.Fatal(err)
	}
	display := k.svc.UserDisplay(en) // sealed for the user: the kit reads it as them
	body, _ := json.Marshal(map[string]string{"code": code(display["secret"], -1)})
	if _, err := k.svc.CompleteEnrolment(ctx, core.System, en.ID, api.CompleteEnrolment{Label: label, Payload: body}); err != nil {
		k.t.Fatal(err)
	}
	return display["secret"]
}

func (k *keyfleetd) applyPolicy(doc string) {
	k.t.Helper()
	if _, err := k.svc.ApplyPolicy(context.Background(), core.System, api.PolicyDocument{Document: doc}); err != nil {
		k.t.Fatal(err)
	}
}

// args are the module's arguments for this keyfleetd.
func (k *keyfleetd) args(helper string, more ...string) string {
	return strings.Join(append([]string{"helper=" + helper, "url=" + k.url, "token_file=" + k.tokenFile, "ca_file=" + k.caFile, "timeout=3s",
		"spool_dir=" + k.spool}, more...), " ")
}

func code(seed string, step int) string {
	c, err := totp.Code(seed, "SHA1", 6, 30, time.Now().Add(time.Duration(step)*30*time.Second))
	if err != nil {
		panic(err)
	}
	return c
}

func unique(prefix string) string {
	b := make([]byte, 4)
	rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// pamService writes /etc/pam.d/<a unique name> with an auth line for
// pam_keyfleet.so and permissive account and session lines, and removes
// it after the test.
func pamService(t *testing.T, so, args string) string {
	t.Helper()
	asRoot(t)
	name := unique("keyfleet-test-")
	path := filepath.Join("/etc/pam.d", name)
	body := fmt.Sprintf("# written by keyfleet's tests; removed when they end\nauth required %s %s\naccount required pam_permit.so\nsession required pam_permit.so\npassword required pam_deny.so\n", so, args)
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(path) })
	return name
}

// unixUser creates a Unix account (no home, /bin/sh) in the given groups,
// created too, and removes them after the test.
func unixUser(t *testing.T, groups ...string) string {
	t.Helper()
	asRoot(t)
	name := unique("kf")
	for _, g := range groups {
		if out, err := exec.Command("groupadd", g).CombinedOutput(); err != nil {
			t.Fatalf("groupadd %s: %v %s", g, err, out)
		}
		t.Cleanup(func() { exec.Command("groupdel", g).Run() })
	}
	args := []string{"-M", "-N", "-d", "/nonexistent", "-s", "/bin/sh"}
	if len(groups) > 0 {
		args = append(args, "-G", strings.Join(groups, ","))
	}
	if out, err := exec.Command("useradd", append(args, name)...).CombinedOutput(); err != nil {
		t.Fatalf("useradd %s: %v %s", name, err, out)
	}
	// Registered after the groups' clean-ups, so it runs before them.
	t.Cleanup(func() { exec.Command("userdel", name).Run() })
	return name
}
