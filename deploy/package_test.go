package deploy_test

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
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
)

// The package's fixed paths. The test refuses to run where they are in use.
const (
	dataDir = "/var/lib/keyfleet"
	confDir = "/etc/keyfleet"
	logDir  = "/var/log/keyfleet"
	unit    = "/lib/systemd/system/keyfleetd.service"
)

// TestDebianPackageInstallsRunsAsItsUnitAndPurges builds the packages
// with make package's script, installs them with dpkg on this machine,
// initialises the data folder as the postinst message says, runs the
// unit's ExecStart as systemd would (its user and group, its umask, no new
// privileges, no capabilities), checks that keyfleetd serves, stops it
// and purges both packages.
func TestDebianPackageInstallsRunsAsItsUnitAndPurges(t *testing.T) {
	needTools(t, map[string]string{"dpkg": "dpkg", "dpkg-deb": "dpkg", "setpriv": "util-linux", "runuser": "util-linux",
		"systemd-analyze": "systemd", "useradd": "passwd", "gzip": "gzip", "git": "git", "make": "make"})
	if os.Geteuid() != 0 {
		t.Fatal("installing a Debian package needs root: run the test as root (make test does in CI)")
	}
	lockMachine(t)
	refuseIfInUse(t)
	debs := buildPackages(t)
	hadUser := userExists("keyfleet")
	t.Cleanup(func() { purgeAndForget(t, hadUser) })

	dpkg(t, "-i", debs["keyfleet"], debs["keyfleet-agent"])
	checkInstalled(t)
	svc := readUnit(t, unit)
	runuser(t, svc["User"], "/usr/bin/keyfleetd", "init", "--data", dataDir, "--config", confDir+"/keyfleetd.yaml")
	runAsTheUnitWould(t, svc)

	out := dpkg(t, "--purge", "keyfleet-agent", "keyfleet")
	if !strings.Contains(out, "kept /var/lib/keyfleet") {
		t.Errorf("the purge did not say that it kept the data folder:\n%s", out)
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
	for _, p := range []string{"keyfleet", "keyfleet-agent"} {
		if out, _ := exec.Command("dpkg-query", "-W", "-f=${Status}", p).Output(); strings.Contains(string(out), "installed") && !strings.Contains(string(out), "not-installed") {
			t.Fatalf("the package %s is installed on this machine (%s); the test installs and purges it, so it will not run here", p, out)
		}
	}
	for _, d := range []string{dataDir, confDir} {
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
	for _, name := range []string{"keyfleet", "keyfleet-agent"} {
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
		{confDir, 0o750 | os.ModeDir, "0", g.Gid},
		{confDir + "/keyfleetd.yaml", 0o640, "0", g.Gid},
		{"/usr/bin/keyfleetd", 0o755, "0", "0"},
		{"/usr/bin/keyfleet-agent", 0o755, "0", "0"},
		{"/usr/lib/keyfleet/plugins/keyfleet-plugin-totp", 0o755, "0", "0"},
		{"/usr/lib/keyfleet/plugins/keyfleet-plugin-push", 0o755, "0", "0"},
		{"/usr/share/man/man1/keyfleetd-serve.1.gz", 0o644, "0", "0"},
		{"/usr/share/man/man1/keyfleet-agent-provision.1.gz", 0o644, "0", "0"},
		{"/usr/share/bash-completion/completions/keyfleet", 0o644, "0", "0"},
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
// its own through the environment (as an Environment= line would).
func runAsTheUnitWould(t *testing.T, svc map[string]string) {
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
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
		if waitErr != nil {
			t.Fatalf("keyfleetd did not stop cleanly on SIGTERM: %v\n%s", waitErr, logs)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("keyfleetd did not stop within TimeoutStopSec\n%s", logs)
	}
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

// checkServes calls the API with the admin token init wrote.
func checkServes(t *testing.T, hc *http.Client, base string) {
	t.Helper()
	tok, err := os.ReadFile(dataDir + "/admin.token")
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("GET", base+"/v1/me", nil)
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET /v1/me with the admin token: %d", resp.StatusCode)
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
	if len(files) < 10 {
		t.Fatalf("%s lists only %d files", deb, len(files))
	}
	return files
}

// purgeAndForget leaves the machine as it was: the packages purged, the
// data and log folders the test made removed, and the keyfleet user and
// group removed if the test made them.
func purgeAndForget(t *testing.T, hadUser bool) {
	exec.Command("dpkg", "--purge", "keyfleet-agent", "keyfleet").Run()
	os.RemoveAll(dataDir)
	os.RemoveAll(logDir)
	os.RemoveAll(confDir)
	if !hadUser {
		exec.Command("userdel", "keyfleet").Run()
		exec.Command("groupdel", "keyfleet").Run()
	}
}
