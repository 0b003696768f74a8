package pam_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/api/client"
	"github.com/keyfleet/keyfleet/daemon/core"
	pushkind "github.com/keyfleet/keyfleet/plugins/push"
)

// The kit for push sign-ins: a push companion that answers over
// keyfleetd's HTTPS API as keyfleet-agent push does, pamtester run with
// pipes so that a test answers as the sign-in goes (read the number, pick
// it on the companion, press Enter), and a syslog that catches what the
// module and its helper log.

// companion is a user's push companion.
type companion struct {
	t   *testing.T
	dev *pushkind.Device
	c   *client.Client
}

// pushFactor enrols a push companion named label for user.
func (k *keyfleetd) pushFactor(user, label string) *companion {
	k.t.Helper()
	ctx := context.Background()
	en, _, err := k.svc.CreateEnrolment(ctx, core.System, api.CreateEnrolment{User: user, Kind: "push"})
	if err != nil {
		k.t.Fatal(err)
	}
	var params map[string]string
	json.Unmarshal(en.Params, &params)
	dev, err := pushkind.NewDevice(nil)
	if err != nil {
		k.t.Fatal(err)
	}
	r, err := dev.Enrol(en.ID, params["nonce"], label, "file")
	if err != nil {
		k.t.Fatal(err)
	}
	body, _ := json.Marshal(r)
	f, err := k.svc.CompleteEnrolment(ctx, core.System, en.ID, api.CompleteEnrolment{Label: label, Payload: body})
	if err != nil {
		k.t.Fatal(err)
	}
	dev.FactorID = f.ID
	ca, _ := os.ReadFile(k.caFile)
	c, err := client.New(client.Config{Server: k.url, CAPEM: ca})
	if err != nil {
		k.t.Fatal(err)
	}
	return &companion{t: k.t, dev: dev, c: c.WithDevice(dev)}
}

// next waits (long poll) for the push the companion receives.
func (c *companion) next() pushkind.Delivery {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for ctx.Err() == nil {
		items, err := c.c.PendingPushes(ctx, 10*time.Second)
		if err != nil {
			c.t.Fatalf("the companion's long poll: %v", err)
		}
		if len(items) > 0 {
			var d pushkind.Delivery
			json.Unmarshal(items[0], &d)
			return d
		}
	}
	c.t.Fatal("no push reached the companion within 20s")
	return pushkind.Delivery{}
}

// answer signs and sends a decision on d.
func (c *companion) answer(d pushkind.Delivery, number, decision string) api.PushOutcome {
	c.t.Helper()
	a, err := c.dev.Answer(d, number, decision, time.Now())
	if err != nil {
		c.t.Fatal(err)
	}
	out, err := c.c.AnswerPush(context.Background(), a)
	if err != nil {
		c.t.Fatalf("answering the push: %v", err)
	}
	return out
}

// output collects what a process prints and wakes whoever waits for it.
type output struct {
	mu   sync.Mutex
	b    bytes.Buffer
	more chan struct{} // closed and replaced at each write
}

func newOutput() *output { return &output{more: make(chan struct{})} }

func (o *output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	close(o.more)
	o.more = make(chan struct{})
	return o.b.Write(p)
}

func (o *output) String() string { o.mu.Lock(); defer o.mu.Unlock(); return o.b.String() }

// waitFor returns re's first match in what was printed, waiting up to 20s
// for it; done ends the wait early (the process ended).
func (o *output) waitFor(t *testing.T, re *regexp.Regexp, done <-chan struct{}) []string {
	t.Helper()
	deadline := time.NewTimer(20 * time.Second)
	defer deadline.Stop()
	for {
		o.mu.Lock()
		m, more := re.FindStringSubmatch(o.b.String()), o.more
		o.mu.Unlock()
		if m != nil {
			return m
		}
		select {
		case <-more:
		case <-done:
			if m := re.FindStringSubmatch(o.String()); m != nil {
				return m
			}
			t.Fatalf("the sign-in ended without %s:\n%s", re, o.String())
		case <-deadline.C:
			t.Fatalf("no %s within 20s:\n%s", re, o.String())
		}
	}
}

// signIn is pamtester authenticating one user with its stdin and stdout
// piped, in a mount namespace whose /dev/log is the test's own syslog.
type signIn struct {
	t      *testing.T
	stdin  io.WriteCloser
	out    *output
	done   chan struct{}
	syslog *output
}

// startSignIn starts pamtester for user against service.
func startSignIn(t *testing.T, service, user string) *signIn {
	t.Helper()
	bin := need(t, "pamtester", "pamtester")
	stdbuf := need(t, "stdbuf", "coreutils")
	s := &signIn{t: t, out: newOutput(), done: make(chan struct{}), syslog: newOutput()}
	// pamtester prints PAM_TEXT_INFO with stdio, which holds it back in a
	// pipe until the end; a terminal, as at a console login, is line
	// buffered, and stdbuf makes the pipe so.
	cmd := inPrivateDev(t, s.syslog, stdbuf, "-oL", bin, "-v", service, user, "authenticate")
	cmd.Stdout, cmd.Stderr = s.out, s.out
	var err error
	if s.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { cmd.Wait(); close(s.done) }()
	t.Cleanup(func() { s.stdin.Close(); cmd.Process.Kill(); <-s.done })
	return s
}

// waitFor waits for re in what pamtester printed.
func (s *signIn) waitFor(re string) []string {
	s.t.Helper()
	return s.out.waitFor(s.t, regexp.MustCompile(re), s.done)
}

// enter answers the prompt on screen with line.
func (s *signIn) enter(line string) {
	s.t.Helper()
	if _, err := io.WriteString(s.stdin, line+"\n"); err != nil {
		s.t.Fatal(err)
	}
}

// result waits for pamtester to end and reports whether PAM said yes.
func (s *signIn) result() (bool, string) {
	s.t.Helper()
	s.stdin.Close()
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		s.t.Fatalf("pamtester did not end within 30s:\n%s", s.out.String())
	}
	return strings.Contains(s.out.String(), "successfully authenticated"), s.out.String()
}

// inPrivateDev runs a program in a mount namespace of its own whose /dev
// holds the usual character devices and a log socket that the test
// reads into logs: what the module (pam_syslog) and the helper
// (log/syslog) send to syslog, without touching the machine's /dev/log.
func inPrivateDev(t *testing.T, logs *output, program string, args ...string) *exec.Cmd {
	t.Helper()
	unshare := need(t, "unshare", "util-linux")
	dir := t.TempDir()
	sock := filepath.Join(dir, "log.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		b := make([]byte, 65536)
		for {
			n, err := conn.Read(b)
			if errors.Is(err, net.ErrClosed) {
				return
			}
			logs.Write(append(b[:n:n], '\n'))
		}
	}()
	t.Cleanup(func() { conn.Close() })
	dev := filepath.Join(dir, "dev")
	os.Mkdir(dev, 0o755)
	const script = `set -e
mount --make-rprivate /
mount -t tmpfs -o mode=0755 keyfleet-test-dev "$1"
for n in null zero full random urandom tty; do
	if [ -e "/dev/$n" ]; then : > "$1/$n"; mount --bind "/dev/$n" "$1/$n"; fi
done
ln -s "$2" "$1/log"
mount --rbind "$1" /dev
shift 2
exec "$@"`
	return exec.Command(unshare, append([]string{"--mount", "sh", "-c", script, "sh", dev, sock, program}, args...)...)
}
