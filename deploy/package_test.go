package deploy_test

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keyfleet/keyfleet/daemon"
)

// The package's fixed paths. The test refuses to run where they are in use.
const (
	dataDir   = "/var/lib/keyfleet"
	anchorDir = "/var/lib/keyfleet-anchor" // the audit checkpoint, apart from the store
	confDir   = "/etc/keyfleet"
	logDir    = "/var/log/keyfleet"
	unit      = "/lib/systemd/system/keyfleetd.service"
	pamHelper = "/usr/libexec/keyfleet/keyfleet-pam-helper"
)

// packages are the Debian packages make package builds.
var packages = []string{"keyfleet", "keyfleet-agent", "libpam-keyfleet"}

// TestDebianPackageInstallsRunsAsItsUnitAndPurges builds the packages
// with make package's script, installs them with dpkg on this machine,
// initialises the data folder as the postinst message says, runs the
// unit's ExecStart as systemd would (its user and group, its umask, no new
// privileges, no capabilities), checks that keyfleetd serves and keeps its
// audit checkpoint where the packaged configuration says, signs in through
// the installed PAM module, stops it and purges the packages.
func TestDebianPackageInstallsRunsAsItsUnitAndPurges(t *testing.T) {
	needTools(t, map[string]string{"dpkg": "dpkg", "dpkg-deb": "dpkg", "setpriv": "util-linux", "runuser": "util-linux",
		"systemd-analyze": "systemd", "useradd": "passwd", "gzip": "gzip", "git": "git", "make": "make",
		"gcc": "gcc", "pamtester": "pamtester"})
	if os.Geteuid() != 0 {
		t.Fatal("installing a Debian package needs root: run the test as root (make test does in CI)")
	}
	lockMachine(t)
	refuseIfInUse(t)
	debs := buildPackages(t)
	hadUser := userExists("keyfleet")
	t.Cleanup(func() { purgeAndForget(t, hadUser) })

	dpkg(t, "-i", debs["keyfleet"], debs["keyfleet-agent"], debs["libpam-keyfleet"])
	checkInstalled(t)
	svc := readUnit(t, unit)
	out := runuser(t, svc["User"], "/usr/bin/keyfleetd", "init", "--data", dataDir, "--config", confDir+"/keyfleetd.yaml")
	first := checkInitCheckpoint(t, out, svc)
	logs := runAsTheUnitWould(t, svc)
	checkServeCheckpoints(t, logs, first)

	out = dpkg(t, "--purge", "libpam-keyfleet", "keyfleet-agent", "keyfleet")
	if !strings.Contains(out, "kept /var/lib/keyfleet") || !strings.Contains(out, anchorDir) {
		t.Errorf("the purge did not say that it kept the data folder and the checkpoint's:\n%s", out)
	}
	if _, err := os.Stat(anchorDir + "/audit.checkpoint"); err != nil {
		t.Errorf("the purge removed the audit checkpoint: %v", err)
	}
	checkPurged(t, debs)
}

func needTools(t *testing.T, tools map[string]string) {
	t.Helper()
	for tool, pkg := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed: apt-get install %s", tool, pkg)
		}
	}
}

// lockMachine keeps two runs of this test (two checkouts on one machine)
// from installing the package at the same time.
func lockMachine(t *testing.T) {
	f, err := os.OpenFile("/run/lock/keyfleet-package-test.lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() })
}

// refuseIfInUse stops the test before it touches a real installation.
func refuseIfInUse(t *testing.T) {
	t.Helper()
	for _, p := range packages {
		if out, _ := exec.Command("dpkg-query", "-W", "-f=${Status}", p).Output(); strings.Contains(string(out), "installed") && !strings.Contains(string(out), "not-installed") {
			t.Fatalf("the package %s is installed on this machine (%s); the test installs and purges it, so it will not run here", p, out)
		}
	}
	for _, d := range []string{dataDir, anchorDir, confDir, pamHelper} {
		if _, err := os.Stat(d); err == nil {
			t.Fatalf("%s exists: the test will not run where keyfleet may be in use", d)
		}
	}
}

// buildPackages builds the binaries as make build does and the packages
// with scripts/package.sh, into a temporary folder.
func buildPackages(t *testing.T) map[string]string {
	t.Helper()
	tmp := t.TempDir()
	bin, dist := filepath.Join(tmp, "bin"), filepath.Join(tmp, "dist")
	run(t, exec.Command("make", "-C", "..", "--no-print-directory", "build", "BIN="+bin))
	pkg := exec.Command("../scripts/package.sh")
	pkg.Env = append(os.Environ(), "BIN="+bin, "DIST="+dist)
	run(t, pkg)
	debs := map[string]string{}
	for _, name := range packages {
		m, _ := filepath.Glob(filepath.Join(dist, name+"_*.deb"))
		if len(m) != 1 {
			t.Fatalf("want one %s package in %s, found %v", name, dist, m)
		}
		debs[name] = m[0]
	}
	return debs
}

func run(t *testing.T, cmd *exec.Cmd) string {
	t.Helper()
	b, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, b)
	}
	return string(b)
}

func dpkg(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command("dpkg", args...)
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	return run(t, cmd)
}

func userExists(name string) bool {
	_, err := user.Lookup(name)
	return err == nil
}

// checkInstalled looks at what the package and its postinst made.
func checkInstalled(t *testing.T) {
	t.Helper()
	u, err := user.Lookup("keyfleet")
	if err != nil {
		t.Fatalf("the postinst made no keyfleet user: %v", err)
	}
	if out, _ := exec.Command("getent", "passwd", "keyfleet").Output(); !strings.HasSuffix(strings.TrimSpace(string(out)), ":/usr/sbin/nologin") {
		t.Errorf("the keyfleet user can log in: %s", out)
	}
	g, _ := user.LookupGroup("keyfleet")
	for _, c := range []struct {
		path       string
		mode       os.FileMode
		uid, group string
	}{
		{dataDir, 0o700 | os.ModeDir, u.Uid, g.Gid},
		{anchorDir, 0o700 | os.ModeDir, u.Uid, g.Gid},
		{confDir, 0o750 | os.ModeDir, "0", g.Gid},
		{confDir + "/keyfleetd.yaml", 0o640, "0", g.Gid},
		{"/usr/bin/keyfleetd", 0o755, "0", "0"},
		{"/usr/bin/keyfleet-agent", 0o755, "0", "0"},
		{"/usr/lib/keyfleet/plugins/keyfleet-plugin-totp", 0o755, "0", "0"},
		{"/usr/lib/keyfleet/plugins/keyfleet-plugin-push", 0o755, "0", "0"},
		{"/usr/share/man/man1/keyfleetd-serve.1.gz", 0o644, "0", "0"},
		{"/usr/share/man/man1/keyfleet-agent-provision.1.gz", 0o644, "0", "0"},
		{"/usr/share/bash-completion/completions/keyfleet", 0o644, "0", "0"},
		{pamModuleDir(t) + "/pam_keyfleet.so", 0o644, "0", "0"},
		{pamHelper, 0o755, "0", "0"},
	} {
		st, err := os.Stat(c.path)
		if err != nil {
			t.Errorf("%s: %v", c.path, err)
			continue
		}
		sys := st.Sys().(*syscall.Stat_t)
		if st.Mode() != c.mode || strconv.Itoa(int(sys.Uid)) != c.uid || strconv.Itoa(int(sys.Gid)) != c.group {
			t.Errorf("%s: mode %v owner %d:%d, want %v %s:%s", c.path, st.Mode(), sys.Uid, sys.Gid, c.mode, c.uid, c.group)
		}
	}
	if out := run(t, exec.Command("/usr/bin/keyfleetd", "--version")); !strings.HasPrefix(out, "keyfleetd v") {
		t.Errorf("keyfleetd --version: %q", out)
	}
	verifyUnit(t)
}

// verifyUnit runs systemd's own checks on the installed unit: no error
// (the binary and the man pages it names exist) and an exposure score
// systemd rates OK.
func verifyUnit(t *testing.T) {
	t.Helper()
	out, _ := exec.Command("systemd-analyze", "verify", unit).CombinedOutput()
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, "keyfleetd") {
			t.Errorf("systemd-analyze verify: %s", line)
		}
	}
	sec, err := exec.Command("systemd-analyze", "security", "--offline=true", unit).CombinedOutput()
	m := regexp.MustCompile(`Overall exposure level for keyfleetd.service: ([0-9.]+)`).FindSubmatch(sec)
	if err != nil || m == nil {
		t.Fatalf("systemd-analyze security: %v\n%s", err, sec)
	}
	if score, _ := strconv.ParseFloat(string(m[1]), 64); score > 2.0 {
		t.Errorf("exposure %.1f: the unit lost some of its hardening\n%s", score, sec)
	}
}

// readUnit reads the [Service] settings of a unit file; repeated keys
// keep the last value.
func readUnit(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	svc, section := map[string]string{}, ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "["):
			section = line
		case section == "[Service]":
			k, v, _ := strings.Cut(line, "=")
			svc[k] = v
		}
	}
	for _, k := range []string{"User", "Group", "ExecStart", "UMask", "NoNewPrivileges", "CapabilityBoundingSet"} {
		if _, ok := svc[k]; !ok {
			t.Fatalf("%s has no %s", path, k)
		}
	}
	return svc
}

func runuser(t *testing.T, who string, args ...string) string {
	t.Helper()
	return run(t, exec.Command("runuser", append([]string{"-u", who, "--"}, args...)...))
}

// runAsTheUnitWould starts ExecStart with the unit's user, group, umask,
// no new privileges and an empty capability set, and a listen address of
// its own through the environment (as an Environment= line would). It
// returns what keyfleetd logged.
func runAsTheUnitWould(t *testing.T, svc map[string]string) string {
	t.Helper()
	if svc["NoNewPrivileges"] != "yes" || svc["CapabilityBoundingSet"] != "" {
		t.Fatalf("the unit is not hardened: NoNewPrivileges=%s CapabilityBoundingSet=%s", svc["NoNewPrivileges"], svc["CapabilityBoundingSet"])
	}
	addr := freeAddr(t)
	script := fmt.Sprintf("umask %s; exec setpriv --reuid=%s --regid=%s --init-groups --no-new-privs --inh-caps=-all --bounding-set=-all -- %s",
		svc["UMask"], svc["User"], svc["Group"], svc["ExecStart"])
	cmd := exec.Command("/bin/sh", "-c", script)
	cmd.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8", "KEYFLEET_LISTEN=" + addr}
	logs := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var waitErr error
	exited := make(chan struct{})
	go func() { waitErr = cmd.Wait(); close(exited) }()
	defer func() {
		select {
		case <-exited:
		default:
			cmd.Process.Kill()
			<-exited
		}
	}()
	hc := httpsClient(t)
	waitReady(t, hc, "https://"+addr, exited, logs)
	checkProcess(t, cmd.Process.Pid, svc["User"])
	checkServes(t, hc, "https://"+addr)
	checkPAM(t, "https://"+addr)
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
		if waitErr != nil {
			t.Fatalf("keyfleetd did not stop cleanly on SIGTERM: %v\n%s", waitErr, logs)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("keyfleetd did not stop within TimeoutStopSec\n%s", logs)
	}
	return logs.String()
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func httpsClient(t *testing.T) *http.Client {
	pemBytes, err := os.ReadFile(dataDir + "/tls/cert.pem")
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pemBytes)
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "localhost"}}}
}

func waitReady(t *testing.T, hc *http.Client, base string, exited <-chan struct{}, logs *strings.Builder) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			t.Fatalf("keyfleetd exited\n%s", logs)
		default:
		}
		if resp, err := hc.Get(base + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(50 * time.Millisecond) // polling interval
	}
	t.Fatalf("keyfleetd never became ready\n%s", logs)
}

// checkProcess reads the running daemon's credentials from /proc: the
// unit's user, no new privileges, no capabilities.
func checkProcess(t *testing.T, shPID int, who string) {
	t.Helper()
	u, _ := user.Lookup(who)
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", shPID))
	if err != nil {
		t.Fatal(err)
	}
	st := string(b)
	for _, want := range []string{"Name:\tkeyfleetd", "NoNewPrivs:\t1", "CapEff:\t0000000000000000", "CapBnd:\t0000000000000000"} {
		if !strings.Contains(st, want) {
			t.Errorf("the daemon's /proc status lacks %q:\n%s", want, st)
		}
	}
	if !regexp.MustCompile(`(?m)^Uid:\t` + u.Uid + `\t` + u.Uid + `\t`).MatchString(st) {
		t.Errorf("the daemon does not run as %s (uid %s):\n%s", who, u.Uid, st)
	}
}

// checkServes calls the API with the admin token init wrote, and makes
// one audited change (a user), which the checkpoint at shutdown covers.
func checkServes(t *testing.T, hc *http.Client, base string) {
	t.Helper()
	tok, err := os.ReadFile(dataDir + "/admin.token")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ method, path, body string }{
		{"GET", "/v1/me", ""},
		{"POST", "/v1/users", `{"username":"packaged"}`},
	} {
		req, _ := http.NewRequest(c.method, base+c.path, strings.NewReader(c.body))
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
		req.Header.Set("Content-Type", "application/json")
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			t.Fatalf("%s %s with the admin token: %d", c.method, c.path, resp.StatusCode)
		}
	}
}

// checkInitCheckpoint: the packaged configuration keeps the audit
// checkpoint outside the data folder, in a folder the unit lets the
// service write (ProtectSystem=strict leaves only its state, log and
// configuration folders writable), and init, run as the service's user,
// wrote the first one there. It returns that checkpoint's seq.
func checkInitCheckpoint(t *testing.T, initOut string, svc map[string]string) uint64 {
	t.Helper()
	var c daemon.Config
	if err := c.LoadFile(confDir + "/keyfleetd.yaml"); err != nil {
		t.Fatal(err)
	}
	file := c.Audit.Checkpoint.File
	if file == "" || strings.HasPrefix(file, dataDir+"/") {
		t.Fatalf("the packaged audit.checkpoint.file is %q: not a file outside the data folder", file)
	}
	writable := map[string]bool{}
	for _, d := range strings.Fields(svc["StateDirectory"]) {
		writable["/var/lib/"+d] = true
	}
	for _, d := range strings.Fields(svc["ReadWritePaths"]) {
		writable[d] = true
	}
	if !writable[filepath.Dir(file)] {
		t.Errorf("the unit does not let keyfleetd write %s (StateDirectory=%s ReadWritePaths=%s)", filepath.Dir(file), svc["StateDirectory"], svc["ReadWritePaths"])
	}
	if strings.Contains(initOut, "not written") || !strings.Contains(initOut, file) {
		t.Errorf("init did not write the first audit checkpoint to %s:\n%s", file, initOut)
	}
	return readCheckpoint(t, file, svc["User"])
}

// readCheckpoint reads a checkpoint file's seq, and checks that it
// belongs to the service's user and is readable by it alone.
func readCheckpoint(t *testing.T, file, who string) uint64 {
	t.Helper()
	u, _ := user.Lookup(who)
	st, err := os.Stat(file)
	if err != nil {
		t.Fatalf("no audit checkpoint: %v", err)
	}
	if uid := strconv.Itoa(int(st.Sys().(*syscall.Stat_t).Uid)); uid != u.Uid || st.Mode() != 0o600 {
		t.Errorf("%s: mode %v owner %s, want 0600 and %s", file, st.Mode(), uid, who)
	}
	b, _ := os.ReadFile(file)
	var cp struct {
		Seq uint64 `json:"seq"`
	}
	if err := json.Unmarshal(b, &cp); err != nil {
		t.Fatalf("%s: %v\n%s", file, err, b)
	}
	return cp.Seq
}

// checkServeCheckpoints: keyfleetd compared the store with the checkpoint
// init wrote, wrote a newer one covering the change made meanwhile, and
// logged no warning or error about checkpoints.
func checkServeCheckpoints(t *testing.T, logs string, first uint64) {
	t.Helper()
	for _, want := range []string{"the store matches the newest audit checkpoint", "audit checkpoint written"} {
		if !strings.Contains(logs, want) {
			t.Errorf("keyfleetd did not log %q:\n%s", want, logs)
		}
	}
	for _, line := range strings.Split(logs, "\n") {
		if strings.Contains(line, "checkpoint") && (strings.Contains(line, `"level":"ERROR"`) || strings.Contains(line, `"level":"WARN"`)) {
			t.Errorf("keyfleetd logged a checkpoint problem: %s", line)
		}
	}
	if seq := readCheckpoint(t, anchorDir+"/audit.checkpoint", "keyfleet"); seq <= first {
		t.Errorf("the checkpoint file still holds seq %d after an audited change (init wrote %d)", seq, first)
	}
}

// checkPurged: no file of either package is left, nor the configuration.
func checkPurged(t *testing.T, debs map[string]string) {
	t.Helper()
	for name, deb := range debs {
		if out, _ := exec.Command("dpkg-query", "-W", "-f=${Status}", name).Output(); strings.Contains(string(out), " installed") {
			t.Errorf("%s is still installed: %s", name, out)
		}
		for _, path := range debFiles(t, deb) {
			if _, err := os.Lstat(path); err == nil {
				t.Errorf("%s of %s is left after the purge", path, name)
			}
		}
	}
	if _, err := os.Stat(confDir); err == nil {
		t.Errorf("%s is left after the purge", confDir)
	}
}

// debFiles lists the regular files a package holds.
func debFiles(t *testing.T, deb string) []string {
	t.Helper()
	var files []string
	for _, line := range strings.Split(run(t, exec.Command("dpkg-deb", "-c", deb)), "\n") {
		f := strings.Fields(line)
		if len(f) >= 6 && strings.HasPrefix(f[0], "-") {
			files = append(files, strings.TrimPrefix(f[5], "."))
		}
	}
	if len(files) < 3 {
		t.Fatalf("%s lists only %d files", deb, len(files))
	}
	return files
}

// pamModuleDir is where Linux-PAM looks for a module named without a
// path: the folder of libpam-modules' pam_unix.so, under /usr (Debian
// merged /lib into /usr/lib).
func pamModuleDir(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("dpkg", "-S", "pam_unix.so").Output()
	if err != nil {
		t.Fatalf("dpkg -S pam_unix.so: %v (is libpam-modules installed?)", err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if _, path, ok := strings.Cut(line, ": "); ok && strings.HasSuffix(path, "/security/pam_unix.so") {
			dir := filepath.Dir(strings.TrimSpace(path))
			if !strings.HasPrefix(dir, "/usr/") {
				dir = "/usr" + dir
			}
			return dir
		}
	}
	t.Fatalf("no pam_unix.so in dpkg -S:\n%s", out)
	return ""
}

// checkPAM signs in through the installed module with pamtester, as a
// login host would: a PAM service naming pam_keyfleet.so without a path
// (found where Linux-PAM looks), the helper at the path compiled into the
// module, keyfleetd's certificate and a root-only token file. A user
// keyfleet knows and asks no factor of is let in; root, whom keyfleet does
// not know, is refused.
func checkPAM(t *testing.T, base string) {
	t.Helper()
	tok, err := os.ReadFile(dataDir + "/admin.token")
	if err != nil {
		t.Fatal(err)
	}
	tokenFile := filepath.Join(t.TempDir(), "pam.token")
	if err := os.WriteFile(tokenFile, tok, 0o600); err != nil {
		t.Fatal(err)
	}
	service := fmt.Sprintf("keyfleet-package-test-%d", os.Getpid())
	conf := filepath.Join("/etc/pam.d", service)
	body := fmt.Sprintf("# written by keyfleet's package test; removed when it ends\nauth required pam_keyfleet.so url=%s ca_file=%s token_file=%s timeout=10s\naccount required pam_permit.so\n",
		base, dataDir+"/tls/cert.pem", tokenFile)
	if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(conf)
	for _, c := range []struct {
		user, want string
		ok         bool
	}{
		{"packaged", "successfully authenticated", true},
		{"root", "does not know root", false},
	} {
		cmd := exec.Command("pamtester", "-v", service, c.user, "authenticate")
		cmd.Stdin = strings.NewReader("\n")
		out, _ := cmd.CombinedOutput()
		if ok := strings.Contains(string(out), "successfully authenticated"); ok != c.ok || !strings.Contains(string(out), c.want) {
			t.Errorf("pamtester %s %s through the installed module: want %q\n%s", service, c.user, c.want, out)
		}
	}
}

// purgeAndForget leaves the machine as it was: the packages purged, the
// data and log folders the test made removed, and the keyfleet user and
// group removed if the test made them.
func purgeAndForget(t *testing.T, hadUser bool) {
	exec.Command("dpkg", "--purge", "libpam-keyfleet", "keyfleet-agent", "keyfleet").Run()
	os.RemoveAll(dataDir)
	os.RemoveAll(anchorDir)
	os.RemoveAll(logDir)
	os.RemoveAll(confDir)
	if !hadUser {
		exec.Command("userdel", "keyfleet").Run()
		exec.Command("groupdel", "keyfleet").Run()
	}
}
