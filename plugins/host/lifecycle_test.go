package host_test

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keyfleet/keyfleet/plugins/host"
)

func TestMalformedPluginLogLinesCannotCrashTheDaemon(t *testing.T) {
	r, f, _ := onePlugin(t, 5*time.Second)
	if res, err := verify(f, "badlog"); err != nil || !res.OK {
		t.Fatalf("badlog: OK=%v err=%v", res.OK, err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(r.log.String(), "after the bad lines") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	log := r.log.String()
	for _, want := range []string{`"msg":"after the bad lines"`, `"level":"WARN"`, `"message":1`, `"msg":"bad time"`} {
		if !strings.Contains(log, want) {
			t.Errorf("the daemon log lacks %s:\n%s", want, log)
		}
	}
	if res, err := verify(f, "ok"); err != nil || !res.OK {
		t.Fatalf("the next call: OK=%v err=%v", res.OK, err)
	}
	if r.events.restarts() != 0 {
		t.Errorf("%d restarts; malformed log lines must not disturb the plugin", r.events.restarts())
	}
}

// childEnv makes this test binary act as a daemon holding one plugin.
const childEnv = "KEYFLEET_HOST_TEST_CHILD"

func TestPluginsDieWithTheDaemon(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("plugins are tied to the daemon's life on Linux only")
	}
	if dir := os.Getenv(childEnv); dir != "" {
		runChildDaemon(t, dir)
		return
	}
	dir := t.TempDir()
	sum := buildInto(t, dir, "flaky", "flaky", current)
	cmd := exec.Command(os.Args[0], "-test.run=^TestPluginsDieWithTheDaemon$", "-test.v")
	cmd.Env = append(os.Environ(), childEnv+"="+dir, childEnv+"_SUM="+sum)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	pid := 0
	sc := bufio.NewScanner(out)
	for pid == 0 && sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "PLUGIN-PID "); ok {
			pid, _ = strconv.Atoi(v)
		}
	}
	if pid == 0 {
		t.Fatal("the child daemon never reported its plugin's pid")
	}
	if !alive(pid) {
		t.Fatalf("plugin %d is not running before the daemon is killed", pid)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for alive(pid) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if alive(pid) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		t.Fatalf("plugin %d outlived its SIGKILLed daemon", pid)
	}
}

// runChildDaemon loads the plugin, reports its pid and waits to be killed.
func runChildDaemon(t *testing.T, dir string) {
	r := start(t, host.Config{Dir: dir, Plugins: []host.PluginConfig{
		{Name: "keyfleet-plugin-flaky", SHA256: os.Getenv(childEnv + "_SUM")}}})
	res, err := verify(r.kind(t, "flaky"), "pid")
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("PLUGIN-PID %s\n", res.State)
	time.Sleep(time.Minute)
}

// alive reports whether pid runs: a process that exited but was not
// reaped yet (a zombie, when nothing reaps orphans) counts as dead.
func alive(pid int) bool {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && len(s) > i+2 && s[i+2] != 'Z'
}
