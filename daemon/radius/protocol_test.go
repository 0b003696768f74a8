package radius_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/md5"
	"errors"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"

	"github.com/keyfleet/keyfleet/daemon/core"
	"github.com/keyfleet/keyfleet/daemon/foreground"
	kfradius "github.com/keyfleet/keyfleet/daemon/radius"
	"github.com/keyfleet/keyfleet/daemon/ratelimit"
)

// These tests speak RADIUS from Go where FreeRADIUS's tools will not
// misbehave on purpose: resent, forged and flooding requests.

func TestAResentRequestGetsTheFirstAnswerAndItsCodeIsCheckedOnce(t *testing.T) {
	e := newEnv(t, nil)
	e.person("ivan")
	_, seed := e.totpFactor("ivan", "Phone")
	b := signed(request(testSecret, "ivan", code(seed, 0)), testSecret)
	nas := freePort(t) // a NAS resends from the port it sent from
	first, raw1, err := exchange(e.addr, nas, b, testSecret)
	if err != nil || first.Code != radius.CodeAccessAccept {
		t.Fatalf("first copy: %v %v", first, err)
	}
	// The NAS heard nothing in time and sends the very same packet again.
	_, raw2, err := exchange(e.addr, nas, b, testSecret)
	if err != nil || !bytes.Equal(raw1, raw2) {
		t.Fatalf("the resent request got another answer (%v)", err)
	}
	if n := len(e.events("factor.verify")) + len(e.events("factor.verify_failed")); n != 1 {
		t.Fatalf("the code was checked %d times", n)
	}
}

// freePort is a loopback UDP address nobody listens on.
func freePort(t *testing.T) string {
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().String()
}

func TestEveryAnswerIsSignedWithMessageAuthenticatorFirstAndKeepsProxyState(t *testing.T) {
	e := newEnv(t, nil)
	req := request(testSecret, "nobody", "123456", func(p *radius.Packet) {
		p.Add(rfc2865.ProxyState_Type, radius.Attribute("hop-1"))
		p.Add(rfc2865.ProxyState_Type, radius.Attribute("hop-2"))
	})
	b := signed(req, testSecret)
	p, raw, err := exchange(e.addr, "", b, testSecret)
	if err != nil || p.Code != radius.CodeAccessReject {
		t.Fatalf("%v %v", p, err)
	}
	if raw[20] != 80 || raw[21] != 18 {
		t.Fatalf("the first attribute of the answer is type %d, not Message-Authenticator", raw[20])
	}
	zeroed := append([]byte(nil), raw...)
	copy(zeroed[4:20], b[4:20]) // the request's authenticator
	clear(zeroed[22:38])
	mac := hmac.New(md5.New, []byte(testSecret))
	mac.Write(zeroed)
	if !hmac.Equal(mac.Sum(nil), raw[22:38]) {
		t.Fatal("the answer's Message-Authenticator does not verify")
	}
	var states []string
	for _, avp := range p.Attributes {
		if avp.Type == rfc2865.ProxyState_Type {
			states = append(states, string(avp.Attribute))
		}
	}
	if strings.Join(states, ",") != "hop-1,hop-2" {
		t.Fatalf("Proxy-State in the answer: %v", states)
	}
}

func TestForgedAndStrayPacketsAreDroppedUnanswered(t *testing.T) {
	e := newEnv(t, nil)
	e.person("judy")
	_, seed := e.totpFactor("judy", "Phone")
	good := signed(request(testSecret, "judy", code(seed, 0)), testSecret)
	tampered := append([]byte(nil), good...)
	i := bytes.Index(tampered, []byte("judy"))
	copy(tampered[i:], "judx") // an attacker on the path changes the user
	cases := []struct {
		name, from string
		packet     []byte
		reason     string
	}{
		{"a changed packet", "", tampered, "bad_message_authenticator"},
		{"a packet from an address of no client", "127.0.0.2", signed(request(testSecret, "judy", code(seed, 0)), testSecret), "unknown_client"},
		{"a truncated packet", "", good[:30], "malformed"},
		{"an Accounting-Request", "", func() []byte {
			p := request(testSecret, "judy", "")
			p.Code = radius.CodeAccountingRequest
			return signed(p, testSecret)
		}(), "unsupported_code"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if p, _, err := exchange(e.addr, tc.from, tc.packet, testSecret); !errors.Is(err, errNoAnswer) {
				t.Fatalf("answered: %v %v", p, err)
			}
			client := "vpn-gw1"
			if tc.reason == "unknown_client" {
				client = ""
			}
			if e.counter("keyfleet_radius_dropped_total", client, tc.reason) < 1 {
				t.Fatalf("not counted as %s", tc.reason)
			}
		})
	}
	if p, _, err := exchange(e.addr, "", good, testSecret); err != nil || p.Code != radius.CodeAccessAccept {
		t.Fatalf("the untouched request after the forgeries: %v %v", p, err)
	}
}

func TestAFloodOfGuessesForOneUserIsRateLimitedAndAuditedWithACount(t *testing.T) {
	e := newEnv(t, func(c *kfradius.Config, _ *kfradius.Options) { c.RateLimit.PerUser, c.RateLimit.UserBurst = 0.001, 2 })
	e.person("kim")
	e.totpFactor("kim", "Phone")
	var msgs []string
	for _, guess := range []string{"111111", "222222", "333333", "444444", "555555", "666666"} {
		p, _, err := exchange(e.addr, "", signed(request(testSecret, "kim", guess), testSecret), testSecret)
		if err != nil || p.Code != radius.CodeAccessReject {
			t.Fatalf("guess %s: %v %v", guess, p, err)
		}
		msgs = append(msgs, rfc2865.ReplyMessage_GetString(p))
	}
	if !strings.Contains(msgs[5], "Too many sign-in attempts") || strings.Contains(msgs[1], "Too many") {
		t.Fatalf("replies: %q", msgs)
	}
	if n := len(e.events("factor.verify_failed")); n != 2 {
		t.Fatalf("%d guesses reached verification, want the burst of 2", n)
	}
	e.stop() // what was held back is audited when the listener stops
	total := 0
	for _, ev := range e.events(core.LoginRefused) {
		if ev.Extra["reason"] == "user_rate_limited" && ev.Target.Name == "kim" {
			n := 1
			if c := ev.Extra["count"]; c != "" {
				n = int(c[0] - '0')
			}
			total += n
		}
	}
	if total != 4 {
		t.Fatalf("the audit records account for %d rate-limited requests, want 4", total)
	}
}

func TestCHAPIsRefusedWithWhatToChange(t *testing.T) {
	e := newEnv(t, nil)
	req := request(testSecret, "liz", "", func(p *radius.Packet) {
		p.Add(rfc2865.CHAPPassword_Type, radius.Attribute(bytes.Repeat([]byte{1}, 17)))
	})
	p, _, err := exchange(e.addr, "", signed(req, testSecret), testSecret)
	if err != nil || p.Code != radius.CodeAccessReject || !strings.Contains(rfc2865.ReplyMessage_GetString(p), "PAP") {
		t.Fatalf("%v %v", p, err)
	}
}

// pushFake is an out-of-band kind as the push factor will be: it is
// started, then answered on the phone.
type pushFake struct {
	mu      sync.Mutex
	started []string
	answer  kfradius.Answer
}

func (f *pushFake) Start(_ context.Context, _ core.Principal, user string, lf core.LoginFactor) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.started = append(f.started, user+"/"+lf.ID)
	return "ticket-1", nil
}

func (f *pushFake) Poll(_ context.Context, _ core.Principal, ticket string) (kfradius.Answer, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if ticket != "ticket-1" {
		return kfradius.Denied, nil
	}
	return f.answer, nil
}

func (f *pushFake) set(a kfradius.Answer) { f.mu.Lock(); f.answer = a; f.mu.Unlock() }

func (f *pushFake) begun() []string { f.mu.Lock(); defer f.mu.Unlock(); return slices.Clone(f.started) }

func TestAnOutOfBandFactorIsChallengedUntilApproved(t *testing.T) {
	push := &pushFake{}
	// The seam, shown with TOTP standing in as an out-of-band kind.
	e := newEnv(t, func(c *kfradius.Config, o *kfradius.Options) {
		c.Kinds = []string{"none"}
		o.OutOfBand = map[string]kfradius.OutOfBand{"totp": push}
	})
	e.person("mia")
	id, _ := e.totpFactor("mia", "Phone")
	p, _, err := exchange(e.addr, "", signed(request(testSecret, "mia", "push"), testSecret), testSecret)
	if err != nil || p.Code != radius.CodeAccessChallenge || !strings.Contains(rfc2865.ReplyMessage_GetString(p), "Approve the sign-in on Phone") {
		t.Fatalf("start: %v %v", p, err)
	}
	if started := push.begun(); len(started) != 1 || started[0] != "mia/"+id {
		t.Fatalf("started %v", started)
	}
	state := rfc2865.State_Get(p)
	p, _, _ = exchange(e.addr, "", signed(request(testSecret, "mia", "x", func(q *radius.Packet) { rfc2865.State_Set(q, state) }), testSecret), testSecret)
	if p.Code != radius.CodeAccessChallenge {
		t.Fatalf("before the answer: %v", p.Code)
	}
	push.set(kfradius.Approved)
	state = rfc2865.State_Get(p)
	p, _, _ = exchange(e.addr, "", signed(request(testSecret, "mia", "x", func(q *radius.Packet) { rfc2865.State_Set(q, state) }), testSecret), testSecret)
	if p.Code != radius.CodeAccessAccept {
		t.Fatalf("after approval: %v %q", p.Code, rfc2865.ReplyMessage_GetString(p))
	}
}

// downLimits is a database holding the rate limits that cannot be reached.
type downLimits struct{}

func (downLimits) Take(context.Context, time.Time, []ratelimit.Bucket) (int, time.Duration, error) {
	return 0, 0, errors.New("connection refused")
}

// TestAnAttemptThatCannotBeCountedIsRefused: with the per-user buckets in
// a database that is down, nothing is verified uncounted: the answer is a
// reject saying keyfleet cannot check sign-ins now.
func TestAnAttemptThatCannotBeCountedIsRefused(t *testing.T) {
	e := newEnv(t, func(_ *kfradius.Config, o *kfradius.Options) { o.Limits = downLimits{} })
	e.person("kim")
	_, seed := e.totpFactor("kim", "Phone")
	p, _, err := exchange(e.addr, "", signed(request(testSecret, "kim", code(seed, 0)), testSecret), testSecret)
	if err != nil || p.Code != radius.CodeAccessReject || !strings.Contains(rfc2865.ReplyMessage_GetString(p), "cannot check sign-ins right now") {
		t.Fatalf("an uncounted attempt: %v %v", p, err)
	}
	if n := len(e.events("factor.verify")); n != 0 {
		t.Fatalf("%d verifications ran uncounted", n)
	}
}

// Every Access-Request is counted while it is answered, for keyfleetd's
// compliance sweep to give way to (daemon/foreground).
func TestAnAccessRequestIsCountedWhileAnswered(t *testing.T) {
	g := &foreground.Gate{}
	e := newEnv(t, func(_ *kfradius.Config, o *kfradius.Options) { o.Foreground = g })
	p, _, err := exchange(e.addr, "", signed(request(testSecret, "nobody", "123456"), testSecret), testSecret)
	if err != nil || p.Code != radius.CodeAccessReject {
		t.Fatalf("%v %v", p, err)
	}
	if g.Entered() != 1 {
		t.Fatalf("one Access-Request answered: %d counted", g.Entered())
	}
	for deadline := time.Now().Add(5 * time.Second); g.InFlight() != 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) { // the count ends just after the answer is sent
			t.Fatalf("%d request(s) still in flight 5 s after the answer", g.InFlight())
		}
	}
}
