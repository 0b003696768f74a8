package radius_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/md5"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2869"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/audit"
	"github.com/keyfleet/keyfleet/daemon/core"
	kfradius "github.com/keyfleet/keyfleet/daemon/radius"
	"github.com/keyfleet/keyfleet/daemon/seal"
	"github.com/keyfleet/keyfleet/daemon/store"
	"github.com/keyfleet/keyfleet/plugins/sdk"
	"github.com/keyfleet/keyfleet/plugins/totp"
)

const testSecret = "correct-horse-battery-staple-42"

// env is a keyfleet domain on a Badger store on disk with the TOTP kind,
// and a RADIUS listener on a loopback port in front of it.
type env struct {
	t          *testing.T
	dir        string
	svc        *core.Service
	admin      core.Principal
	addr       string
	secretFile string
	reg        *prometheus.Registry
	srv        *kfradius.Server
	stop       func() // stops the listener (idempotent)
}

// newEnv starts the listener; tune, if not nil, adjusts its settings.
func newEnv(t *testing.T, tune func(*kfradius.Config, *kfradius.Options)) *env {
	t.Helper()
	e := &env{t: t, dir: t.TempDir(), reg: prometheus.NewRegistry()}
	st, err := store.Open(store.Options{Dir: filepath.Join(e.dir, "store"), EncryptionKey: make([]byte, 32)})
	if err != nil {
		t.Fatal(err)
	}
	sl, _ := seal.New(make([]byte, 32))
	e.svc, err = core.New(core.Config{Store: st, Sealer: sl, Kinds: []sdk.Factor{totp.Factor{}}})
	if err != nil {
		t.Fatal(err)
	}
	u, _, err := e.svc.CreateUser(context.Background(), core.System, api.CreateUser{Username: "root", Roles: []string{api.RoleAdmin}})
	if err != nil {
		t.Fatal(err)
	}
	e.admin = core.Principal{UserID: u.ID, Username: "root", Roles: []string{api.RoleAdmin}, Auth: "token"}
	e.secretFile = filepath.Join(e.dir, "nas.secret")
	os.WriteFile(e.secretFile, []byte(testSecret+"\n"), 0o600)
	cfg := kfradius.Config{Listen: "127.0.0.1:0", Clients: []kfradius.ClientConfig{
		{Name: "vpn-gw1", Networks: []string{"127.0.0.1"}, SecretFile: e.secretFile}}}
	opts := kfradius.Options{Service: e.svc, Registry: e.reg}
	if tune != nil {
		tune(&cfg, &opts)
	}
	e.srv, err = kfradius.New(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.ListenPacket("udp", cfg.Listen)
	if err != nil {
		t.Fatal(err)
	}
	e.addr = conn.LocalAddr().String()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.srv.Serve(ctx, conn) }()
	var once sync.Once
	e.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("radius server: %v", err)
			}
		})
	}
	t.Cleanup(func() { e.stop(); st.Close() })
	return e
}

// person creates a user.
func (e *env) person(name string, groups ...string) {
	e.t.Helper()
	if _, _, err := e.svc.CreateUser(context.Background(), e.admin, api.CreateUser{Username: name, Groups: groups}); err != nil {
		e.t.Fatal(err)
	}
}

// totpFactor enrols a TOTP factor for user and returns its id and seed.
// It enrols with the previous step's code, so the current step is fresh.
func (e *env) totpFactor(user, label string) (id, seed string) {
	e.t.Helper()
	ctx := context.Background()
	en, _, err := e.svc.CreateEnrolment(ctx, e.admin, api.CreateEnrolment{User: user, Kind: "totp"})
	if err != nil {
		e.t.Fatal(err)
	}
	seed = e.svc.UserDisplay(en)["secret"] // sealed for the user: the kit reads it as them
	body, _ := json.Marshal(map[string]string{"code": code(seed, -1)})
	f, err := e.svc.CompleteEnrolment(ctx, e.admin, en.ID, api.CompleteEnrolment{Label: label, Payload: body})
	if err != nil {
		e.t.Fatal(err)
	}
	return f.ID, seed
}

// code is the TOTP code of seed, step steps from now.
func code(seed string, step int) string {
	c, err := totp.Code(seed, "SHA1", 6, 30, time.Now().Add(time.Duration(step)*30*time.Second))
	if err != nil {
		panic(err)
	}
	return c
}

func (e *env) applyPolicy(doc string) {
	e.t.Helper()
	if _, err := e.svc.ApplyPolicy(context.Background(), core.System, api.PolicyDocument{Document: doc, Comment: "test"}); err != nil {
		e.t.Fatal(err)
	}
}

// events lists the audit events of an action, oldest first.
func (e *env) events(action string) []audit.Event {
	e.t.Helper()
	recs, err := e.svc.ListAudit(context.Background(), e.admin, core.AuditFilter{Action: action}, 500)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []audit.Event
	for _, r := range recs {
		ev, err := r.Event()
		if err != nil {
			e.t.Fatal(err)
		}
		out = append(out, ev)
	}
	return out
}

func (e *env) lastEvent(action string) audit.Event {
	e.t.Helper()
	evs := e.events(action)
	if len(evs) == 0 {
		e.t.Fatalf("no %s audit event", action)
	}
	return evs[len(evs)-1]
}

// counter reads a counter of the listener's metrics by its label values
// (in the order the labels sort); 0 when absent.
func (e *env) counter(name string, labels ...string) float64 {
	e.t.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		e.t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			var got []string
			for _, lp := range m.GetLabel() {
				got = append(got, lp.GetValue())
			}
			if slices.Equal(got, labels) {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// --- a Go client, for what FreeRADIUS's tools cannot do on purpose ---

// request is an Access-Request built by hand.
func request(secret, user, password string, more ...func(*radius.Packet)) *radius.Packet {
	p := radius.New(radius.CodeAccessRequest, []byte(secret))
	rfc2865.UserName_SetString(p, user)
	if password != "" {
		rfc2865.UserPassword_SetString(p, password)
	}
	rfc2865.NASIdentifier_SetString(p, "test-nas")
	for _, m := range more {
		m(p)
	}
	return p
}

// signed encodes p with a Message-Authenticator made with key.
func signed(p *radius.Packet, key string) []byte {
	p.Set(rfc2869.MessageAuthenticator_Type, make([]byte, 16))
	b, err := p.Encode()
	if err != nil {
		panic(err)
	}
	at := bytes.Index(b[20:], []byte{80, 18}) + 20
	mac := hmac.New(md5.New, []byte(key))
	mac.Write(b)
	copy(b[at+2:at+18], mac.Sum(nil))
	return b
}

var errNoAnswer = errors.New("no answer")

// exchange sends b from a socket bound to from (an address, or
// address:port, or "" for any loopback port) and waits briefly for one answer, which it checks and parses.
func exchange(to string, from string, b []byte, secret string) (*radius.Packet, []byte, error) {
	var laddr *net.UDPAddr
	switch {
	case strings.Contains(from, ":"):
		laddr, _ = net.ResolveUDPAddr("udp", from)
	case from != "":
		laddr = &net.UDPAddr{IP: net.ParseIP(from)}
	}
	raddr, _ := net.ResolveUDPAddr("udp", to)
	conn, err := net.DialUDP("udp", laddr, raddr)
	if err != nil {
		return nil, nil, err
	}
	defer conn.Close()
	if _, err := conn.Write(b); err != nil {
		return nil, nil, err
	}
	conn.SetReadDeadline(time.Now().Add(700 * time.Millisecond))
	buf := make([]byte, 4096)
	n, err := conn.Read(buf)
	if err != nil {
		return nil, nil, errNoAnswer
	}
	if !radius.IsAuthenticResponse(buf[:n], b, []byte(secret)) {
		return nil, nil, fmt.Errorf("the answer's Response Authenticator is wrong")
	}
	p, err := radius.Parse(buf[:n], []byte(secret))
	return p, buf[:n], err
}

// --- FreeRADIUS's own clients ---

// need fails the test when a program is missing, naming its package.
func need(t *testing.T, program, pkg string) string {
	t.Helper()
	path, err := exec.LookPath(program)
	if err != nil {
		t.Fatalf("%s is not installed: apt-get install %s (scripts/deps.sh does)", program, pkg)
	}
	return path
}

// reply is what radclient printed about one answer.
type reply struct {
	code  string // Access-Accept, Access-Reject, Access-Challenge; "" when none came
	attrs map[string]string
	out   string
}

var (
	receivedRE = regexp.MustCompile(`Received (Access-[A-Za-z]+) Id`)
	attrRE     = regexp.MustCompile(`(?m)^\s+([A-Za-z-]+) = (.*)$`)
)

// radclient sends one Access-Request with FreeRADIUS's radclient: attrs
// are its input lines; secret is written to a file for -S.
func radclient(t *testing.T, addr, secret string, attrs ...string) reply {
	t.Helper()
	bin := need(t, "radclient", "freeradius-utils")
	sf := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(sf, []byte(secret+"\n"), 0o600)
	cmd := exec.Command(bin, "-x", "-t", "1", "-r", "1", "-S", sf, addr, "auth")
	cmd.Stdin = strings.NewReader(strings.Join(attrs, "\n") + "\n")
	out, _ := cmd.CombinedOutput()
	return parseRadclient(string(out))
}

func parseRadclient(out string) reply {
	r := reply{attrs: map[string]string{}, out: out}
	m := receivedRE.FindStringSubmatchIndex(out)
	if m == nil {
		return r
	}
	r.code = out[m[2]:m[3]]
	for _, a := range attrRE.FindAllStringSubmatch(out[m[1]:], -1) {
		v := strings.Trim(a[2], `"`)
		if old, ok := r.attrs[a[1]]; ok && a[1] == "Reply-Message" {
			v = old + v
		}
		r.attrs[a[1]] = v
	}
	return r
}

// pap is the attribute lines of a PAP request with a Message-Authenticator.
func pap(user, password string, more ...string) []string {
	return append([]string{fmt.Sprintf("User-Name = %q", user), fmt.Sprintf("User-Password = %q", password),
		`NAS-Identifier = "vpn-gw1.example"`, `Calling-Station-Id = "203.0.113.9"`, "Message-Authenticator = 0x00"}, more...)
}
