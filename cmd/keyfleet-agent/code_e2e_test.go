package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	agentfido2 "github.com/keyfleet/keyfleet/agent/fido2"
	"github.com/keyfleet/keyfleet/agent/vkey"
	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/api/client"
	"github.com/keyfleet/keyfleet/daemon"
	fido2kind "github.com/keyfleet/keyfleet/daemon/kinds/fido2"
	pivkind "github.com/keyfleet/keyfleet/daemon/kinds/piv"
	"github.com/keyfleet/keyfleet/plugins/sdk"
)

// lockedBuffer collects the daemon's log while its handlers write.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
func (l *lockedBuffer) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// enrollCmd runs keyfleet-agent enroll, which takes no token: the code is
// the credential.
func enrollCmd(t *testing.T, d *testDaemon, in string, args ...string) (string, string, int) {
	t.Helper()
	stdin, lineIn = strings.NewReader(in), nil
	var out, errb bytes.Buffer
	all := append([]string{"enroll", "--server", d.addr, "--ca", d.caFile}, args...)
	code := run(context.Background(), all, &out, &errb, func(string) string { return "" })
	return out.String(), errb.String(), code
}

// auditText is every audit event of the daemon, as JSON.
func auditText(t *testing.T, d *testDaemon) string {
	t.Helper()
	pg, err := d.admin.ListAudit(context.Background(), client.AuditFilter{Limit: 500})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(pg.Items)
	return string(b)
}

func TestEnrollWithAnEnrolmentCodeEndToEnd(t *testing.T) {
	ca, _ := vkey.NewCA(nil)
	plug(t, vkey.Options{CA: ca, Serial: 40000001})
	kind, err := pivkind.New(pivkind.Config{Roots: []*x509.Certificate{ca.Root()}})
	if err != nil {
		t.Fatal(err)
	}
	logs := &lockedBuffer{}
	d := serve(t, daemon.Options{Kinds: []sdk.Factor{kind}, LogOut: logs})
	ctx := context.Background()
	if _, err := d.admin.CreateUser(ctx, api.CreateUser{Username: "nora"}); err != nil {
		t.Fatal(err)
	}
	e, err := d.admin.CreateEnrolment(ctx, api.CreateEnrolment{User: "nora", Kind: "piv"})
	if err != nil || e.Code == "" {
		t.Fatalf("enrolment %+v, %v", e, err)
	}
	const pin = "24681357"
	out, errOut, code := enrollCmd(t, d, pin+"\n"+pin+"\n", "--reader", pcsc.Slots[0].Reader, "--code", e.Code)
	if code != 0 || !strings.Contains(out, "provisioned YubiKey 40000001 (firmware 5.7.4) for nora") {
		t.Fatalf("exit %d: %s %s", code, out, errOut)
	}
	checkFactor(t, d, "nora", "active")
	if got, _ := d.admin.GetEnrolment(ctx, e.ID); got.State != api.EnrolmentCompleted || got.CodeRedeemedAt == nil {
		t.Fatalf("enrolment after enroll: %+v", got)
	}
	// The same code again, typed at the prompt this time (kept out of the
	// process list): refused, clearly, before the key is touched.
	out2, errOut2, code := enrollCmd(t, d, e.Code+"\n"+pin+"\n"+pin+"\n", "--reader", pcsc.Slots[0].Reader)
	if code != 1 || !strings.Contains(errOut2, "the enrolment code is not valid (wrong, used or expired); ask your administrator for a new one") {
		t.Fatalf("the code used twice: exit %d: %s %s", code, out2, errOut2)
	}
	challenge := e.Code[strings.Index(e.Code, ".")+1:]
	all := out + errOut + out2 + errOut2 + logs.String() + auditText(t, d)
	if strings.Contains(all, pin) || strings.Contains(all, challenge) {
		t.Fatalf("the PIN or the code reached the output, the log or the audit trail")
	}
	if !strings.Contains(auditText(t, d), `"enrolment.code_redeemed"`) {
		t.Fatal("no enrolment.code_redeemed event")
	}
}

func TestEnrollWithAnEnrolmentCodeRefusesFlagsOfAnotherKind(t *testing.T) {
	tests := []struct {
		name, kind string
		flags      []string
		want       string
	}{
		{"--fido2 with a piv code", "piv", []string{"--fido2"}, "this enrolment code is for a piv key: run the command again without --fido2"},
		{"--piv with a fido2 code", "fido2", []string{"--piv"}, "this enrolment code is for a fido2 key: run the command again without --piv"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fca, _ := agentfido2.NewCA()
			d := startBoth(t, kindsConfig{fido2: fido2kind.Config{Roots: []*x509.Certificate{fca.Root()}}})
			ctx := context.Background()
			d.admin.CreateUser(ctx, api.CreateUser{Username: "omar"})
			e, err := d.admin.CreateEnrolment(ctx, api.CreateEnrolment{User: "omar", Kind: tt.kind})
			if err != nil {
				t.Fatal(err)
			}
			_, errOut, code := enrollCmd(t, d, "", append([]string{"--code", e.Code}, tt.flags...)...)
			if code != 1 || !strings.Contains(errOut, tt.want) {
				t.Fatalf("exit %d: %s", code, errOut)
			}
		})
	}
}

func TestEnrollWithAnAccessPassEndToEnd(t *testing.T) {
	fca, _ := agentfido2.NewCA()
	d := startBoth(t, kindsConfig{fido2: fido2kind.Config{Roots: []*x509.Certificate{fca.Root()}}})
	ctx := context.Background()
	d.admin.CreateUser(ctx, api.CreateUser{Username: "jo"})
	// Jo registers her first key herself, with an onboarding pass: the
	// recovery codes are shown to her, the key's holder, once.
	first, err := d.admin.IssueOnboardingPass(ctx, "jo", api.IssuePass{TTL: "30m"})
	if err != nil || first.Code == "" {
		t.Fatalf("onboarding pass %+v, %v", first, err)
	}
	const firstPIN = "4711"
	out, errOut, code := enrollCmd(t, d, firstPIN+"\n"+firstPIN+"\n", "--code", first.Code, "--piv=false", "--fido2", "--soft-fido2", softKey(t, fca, 40000021))
	codes := regexp.MustCompile(`(?m)^  ([0-9a-z]{5}-[0-9a-z]{5})$`).FindAllStringSubmatch(out, -1)
	if code != 0 || len(codes) != 10 {
		t.Fatalf("her first key: exit %d, %d recovery codes: %s %s", code, len(codes), out, errOut)
	}
	pg, _ := d.admin.ListFactors(ctx, client.FactorFilter{User: "jo"})
	if len(pg.Items) != 1 {
		t.Fatalf("jo's factors %+v", pg.Items)
	}
	lost := pg.Items[0]
	// She loses it: a recovery case, confirmed with a recovery code, issues a pass.
	c, err := d.admin.OpenRecovery(ctx, api.OpenRecovery{User: "jo", Reason: "key lost on the train", LostFactors: []string{lost.ID}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.admin.RecoveryCode(ctx, c.ID, codes[0][1]); err != nil {
		t.Fatal(err)
	}
	pass, err := d.admin.IssuePass(ctx, c.ID, api.IssuePass{TTL: "30m"})
	if err != nil {
		t.Fatal(err)
	}
	const pin = "97531864"
	soft := softKey(t, fca, 40000022)
	out, errOut, code = enrollCmd(t, d, pin+"\n"+pin+"\n", "--code", pass.Code, "--piv=false", "--fido2", "--soft-fido2", soft)
	if code != 0 || !strings.Contains(out, "registered FIDO2 credential for jo") {
		t.Fatalf("exit %d: %s %s", code, out, errOut)
	}
	if got, _ := d.admin.GetRecovery(ctx, c.ID); got.State != api.CaseClosed {
		t.Fatalf("the case after the replacement: %s", got.State)
	}
	if f, _ := d.admin.GetFactor(ctx, lost.ID); f.State != api.FactorRevoked {
		t.Fatalf("the lost factor is %s", f.State)
	}
	out2, errOut2, code := enrollCmd(t, d, pin+"\n"+pin+"\n", "--code", pass.Code, "--piv=false", "--fido2", "--soft-fido2", soft)
	if code != 1 || !strings.Contains(errOut2, "ask the helpdesk for a new one") {
		t.Fatalf("the pass used twice: exit %d: %s", code, errOut2)
	}
	if all := out + errOut + out2 + errOut2 + auditText(t, d); strings.Contains(all, pin) || strings.Contains(all, pass.Code[4:]) {
		t.Fatal("the PIN or the pass reached the output or the audit trail")
	}
}

// skewClock is the daemon's clock, which a test can move forward.
type skewClock struct{ skew atomic.Int64 }

func (c *skewClock) now() time.Time       { return time.Now().Add(time.Duration(c.skew.Load())) }
func (c *skewClock) jump(d time.Duration) { c.skew.Add(int64(d)) }

// slowTouch plugs a virtual key and serves a daemon whose clock jumps two
// hours, past any enrolment's expiry, the first time the key waits for a
// touch: the key waits for one to sign the enrolment challenge (the
// default policy asks for touch always), so the enrolment expires between
// the agent's begin and its submit.
func slowTouch(t *testing.T) *testDaemon {
	t.Helper()
	ca, _ := vkey.NewCA(nil)
	clock := &skewClock{}
	var once sync.Once
	plug(t, vkey.Options{CA: ca, Serial: 40000001, OnTouch: func() { once.Do(func() { clock.jump(2 * time.Hour) }) }})
	kind, err := pivkind.New(pivkind.Config{Roots: []*x509.Certificate{ca.Root()}})
	if err != nil {
		t.Fatal(err)
	}
	return serve(t, daemon.Options{Kinds: []sdk.Factor{kind}, Now: clock.now})
}

func TestAnEnrolmentThatExpiresMidProvisioningLeavesNothingAndSaysWhatToDo(t *testing.T) {
	d := slowTouch(t)
	token := d.deskToken(t)
	ctx := context.Background()
	d.admin.CreateUser(ctx, api.CreateUser{Username: "pat"})
	pin := writePIN(t, "24681357")
	out, errOut, code := agentRun(t, d, token, "--user", "pat", "--pin-file", pin)
	for _, want := range []string{"is expired", "put back to factory settings and keyfleetd kept nothing for this key", "run the same keyfleet-agent command again"} {
		if code != 1 || !strings.Contains(errOut, want) || strings.Contains(errOut, "--reset") {
			t.Fatalf("exit %d, want %q (and no --reset) in: %s %s", code, want, out, errOut)
		}
	}
	if strings.Contains(out+errOut, "24681357") {
		t.Fatal("the PIN was printed")
	}
	t.Logf("the operator reads: %s", errOut)
	f, _ := d.admin.ListFactors(ctx, client.FactorFilter{User: "pat"})
	dev, _ := d.admin.ListDevices(ctx, client.DeviceFilter{})
	en, _ := d.admin.ListEnrolments(ctx, client.EnrolmentFilter{User: "pat"})
	if len(f.Items) != 0 || len(dev.Items) != 0 || len(en.Items) != 1 || en.Items[0].State != api.EnrolmentExpired {
		t.Fatalf("after the expiry: factors %+v, devices %+v, enrolments %+v", f.Items, dev.Items, en.Items)
	}
	// Doing what the message says works: the key is factory fresh again.
	if out, errOut, code := agentRun(t, d, token, "--user", "pat", "--pin-file", pin); code != 0 {
		t.Fatalf("provisioning again: exit %d: %s %s", code, out, errOut)
	}
	checkFactor(t, d, "pat", "active")
}

func TestAnEnrolmentCodeThatExpiresMidEnrolmentSaysToAskForANewOne(t *testing.T) {
	d := slowTouch(t)
	ctx := context.Background()
	d.admin.CreateUser(ctx, api.CreateUser{Username: "quinn"})
	e, err := d.admin.CreateEnrolment(ctx, api.CreateEnrolment{User: "quinn", Kind: "piv"})
	if err != nil {
		t.Fatal(err)
	}
	_, errOut, code := enrollCmd(t, d, "24681357\n24681357\n", "--reader", pcsc.Slots[0].Reader, "--code", e.Code)
	if code != 1 || !strings.Contains(errOut, "keyfleetd kept nothing for this key; ask your administrator for a new enrolment code, then run keyfleet-agent enroll --code NEW-CODE") ||
		strings.Contains(errOut, "--reset") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	f, _ := d.admin.ListFactors(ctx, client.FactorFilter{User: "quinn"})
	dev, _ := d.admin.ListDevices(ctx, client.DeviceFilter{})
	if got, _ := d.admin.GetEnrolment(ctx, e.ID); len(f.Items) != 0 || len(dev.Items) != 0 || got.State != api.EnrolmentExpired {
		t.Fatalf("after the expiry: factors %+v, devices %+v, enrolment %s", f.Items, dev.Items, got.State)
	}
}
