package integration

import (
	"context"
	"encoding/json"
	"io"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/internal/cli"
	"github.com/keyfleet/keyfleet/plugins/totp"
)

// seedWatcher collects the CLI's output and answers its code prompt once
// the seed has been printed, as a person with an authenticator app would.
type seedWatcher struct {
	mu   sync.Mutex
	out  strings.Builder
	code *io.PipeWriter
	sent bool
}

var seedLine = regexp.MustCompile(`Or type the seed: ([A-Z2-7]+)`)

func (w *seedWatcher) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.out.Write(p)
	if m := seedLine.FindStringSubmatch(w.out.String()); m != nil && !w.sent {
		w.sent = true
		code, _ := totp.Code(m[1], "SHA1", 6, 30, time.Now())
		go w.code.Write([]byte(code + "\n"))
	}
	return len(p), nil
}

func TestAddTOTPFromTheCLIShowsAQRCodeAndTheRecoveryCodes(t *testing.T) {
	d, dir := totpDaemon(t)
	k := newCLI(t)
	k.login(d, filepath.Join(dir, "admin.token"))
	k.must("users", "create", "ada")
	// The administrator asks for ada's app: the seed is for ada alone, so
	// the administrator gets an enrolment code and what ada runs.
	code, out, errb := k.run("factors", "add-totp", "--user", "ada", "-o", "json")
	var en api.Enrolment
	if code != 0 || json.Unmarshal([]byte(out), &en) != nil || en.Code == "" || len(en.Display) != 0 ||
		!strings.Contains(errb, "keyfleet factors add-totp --code CODE") {
		t.Fatalf("add-totp --user ada: exit %d\n%s%s", code, out, errb)
	}
	// Ada, with no login, redeems the code on her own machine.
	ada := newCLI(t)
	stdin, codeOut := io.Pipe()
	w := &seedWatcher{code: codeOut}
	errb = ""
	var errOut strings.Builder
	status := cli.Run(context.Background(), []string{"factors", "add-totp", "--code", en.Code, "--label", "phone",
		"--server", d.url, "--ca", filepath.Join(dir, "tls", "cert.pem")}, stdin, w, &errOut,
		func(n string) string { return ada.env[n] })
	out = w.out.String()
	if status != 0 {
		t.Fatalf("add-totp --code exited %d\n%s%s", status, out, errOut.String())
	}
	if !strings.Contains(out, "█") && !strings.Contains(out, "▀") {
		t.Fatalf("no QR code in the output:\n%s", out)
	}
	if !strings.Contains(out, "recovery codes") || len(regexp.MustCompile(`(?m)^  [0-9a-z]{5}-[0-9a-z]{5}$`).FindAllString(out, -1)) != 10 {
		t.Fatalf("the first factor's ten recovery codes are not shown:\n%s", out)
	}
	if list := k.must("factors", "list", "--user", "ada"); !strings.Contains(list, "totp") || !strings.Contains(list, "active") {
		t.Fatalf("factors list: %s", list)
	}
	// The code worked once.
	if code, _, errb := ada.run("factors", "add-totp", "--code", en.Code, "--server", d.url, "--ca", filepath.Join(dir, "tls", "cert.pem")); code == 0 || !strings.Contains(errb, "ask for a new code") {
		t.Fatalf("the code used twice: exit %d: %s", code, errb)
	}
}
