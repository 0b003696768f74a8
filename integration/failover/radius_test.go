package failover

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/integration/kftest"
)

const nasSecret = "correct-horse-battery-staple-42"

// radiusNodes sets up n keyfleetd on one database with the RADIUS
// listener on a free loopback port each, the test's radclient as the
// client vpn-gw1, and returns them with their RADIUS addresses. userBurst
// is radius.rate_limit.user_burst, counted across all of them.
func radiusNodes(t *testing.T, n, userBurst int) (nodes []*kftest.Daemon, addrs []string, admin string) {
	t.Helper()
	dirs, _, admin := setup(t, n)
	secret := filepath.Join(t.TempDir(), "nas.secret")
	if err := os.WriteFile(secret, []byte(nasSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, d := range dirs {
		kftest.EditConfig(t, d, map[string]string{
			"radius.enabled":               "true",
			"radius.listen":                "127.0.0.1:0",
			"radius.clients":               fmt.Sprintf("[{name: vpn-gw1, networks: [127.0.0.1], secret_file: %s}]", strconv.Quote(secret)),
			"radius.rate_limit.user_burst": strconv.Itoa(userBurst),
		})
	}
	nodes = serveAll(t, dirs)
	for _, d := range nodes {
		addrs = append(addrs, radiusAddr(t, d))
	}
	return nodes, addrs, admin
}

// radiusAddr is the address d's RADIUS listener logged it bound.
func radiusAddr(t *testing.T, d *kftest.Daemon) string {
	t.Helper()
	if err := d.WaitLog(`"radius listening"`, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(d.Log(), "\n") {
		var rec struct{ Msg, Addr string }
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "radius listening" {
			return rec.Addr
		}
	}
	t.Fatalf("%s logged no RADIUS address:\n%s", d.Name, d.Log())
	return ""
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

// radclient sends one PAP Access-Request with FreeRADIUS's radclient, as
// the NAS vpn-gw1 does (NAS-Identifier, the VPN client's address as
// Calling-Station-Id, Message-Authenticator); more are extra lines.
func radclient(t *testing.T, addr, user, password string, more ...string) reply {
	t.Helper()
	bin, err := exec.LookPath("radclient")
	if err != nil {
		t.Fatal("radclient is not installed: apt-get install freeradius-utils (scripts/deps.sh does)")
	}
	sf := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(sf, []byte(nasSecret+"\n"), 0o600)
	lines := append([]string{fmt.Sprintf("User-Name = %q", user), fmt.Sprintf("User-Password = %q", password),
		`NAS-Identifier = "vpn-gw1.example"`, `Calling-Station-Id = "203.0.113.9"`, "Message-Authenticator = 0x00"}, more...)
	cmd := exec.Command(bin, "-x", "-t", "2", "-r", "1", "-S", sf, addr, "auth")
	cmd.Stdin = strings.NewReader(strings.Join(lines, "\n") + "\n")
	out, _ := cmd.CombinedOutput()
	r := reply{attrs: map[string]string{}, out: string(out)}
	m := receivedRE.FindStringSubmatchIndex(r.out)
	if m == nil {
		return r
	}
	r.code = r.out[m[2]:m[3]]
	for _, a := range attrRE.FindAllStringSubmatch(r.out[m[1]:], -1) {
		v := strings.Trim(a[2], `"`)
		if old, ok := r.attrs[a[1]]; ok && a[1] == "Reply-Message" {
			v = old + v
		}
		r.attrs[a[1]] = v
	}
	return r
}

// TestARadiusChallengeAskedByOneKeyfleetdIsAnsweredOnAnother: two
// keyfleetd on one database, and a NAS that lists both. Ivy has two
// authenticator apps: her first request, to A, is answered with a
// challenge to pick one; her pick goes to B, which asks for the code;
// the code goes back to A, which lets her in. Every State is single use
// across both: sent again, to either, it is refused. Each decision is
// audited with the NAS identifier and the calling station. Then A is
// killed with a challenge open, and B takes its answer.
func TestARadiusChallengeAskedByOneKeyfleetdIsAnsweredOnAnother(t *testing.T) {
	nodes, addrs, admin := radiusNodes(t, 2, 30) // ivy sends more than the default burst in a minute
	a, b := addrs[0], addrs[1]
	nodes[0].MustCall(201, admin, "POST", "/v1/users", api.CreateUser{Username: "ivy"}, nil)
	addTOTP(t, nodes[0], admin, "ivy", "192.0.2.10")
	tablet := addTOTP(t, nodes[1], admin, "ivy", "192.0.2.10")
	nodes[1].MustCall(200, admin, "PATCH", "/v1/factors/"+tablet.factor, map[string]string{"label": "Tablet"}, nil)

	r := radclient(t, a, "ivy", tablet.code(time.Now()))
	if r.code != "Access-Challenge" || r.attrs["State"] == "" || !strings.Contains(r.attrs["Reply-Message"], "2 = ") {
		t.Fatalf("A, a code with two factors: %s %v\n%s", r.code, r.attrs, r.out)
	}
	pickState := r.attrs["State"]
	pick := "1"
	if strings.Contains(r.attrs["Reply-Message"], "2 = Tablet") {
		pick = "2"
	}
	r = radclient(t, b, "ivy", pick, "State = "+pickState)
	if r.code != "Access-Challenge" || !strings.Contains(r.attrs["Reply-Message"], "Enter the code from Tablet") {
		t.Fatalf("B, the pick of A's challenge: %s %v\n%s", r.code, r.attrs, r.out)
	}
	codeState := r.attrs["State"]
	if r := radclient(t, a, "ivy", tablet.code(time.Now()), "State = "+codeState); r.code != "Access-Accept" {
		t.Fatalf("A, the code for B's challenge: %s %v\n%s", r.code, r.attrs, r.out)
	}
	for _, again := range []struct{ to, state, answer string }{{b, codeState, "123456"}, {a, codeState, "123456"}, {a, pickState, pick}, {b, pickState, pick}} {
		r := radclient(t, again.to, "ivy", again.answer, "State = "+again.state)
		if r.code != "Access-Reject" || !strings.Contains(r.attrs["Reply-Message"], "expired or was already answered") {
			t.Fatalf("a State answered again: %s %v\n%s", r.code, r.attrs, r.out)
		}
	}
	checkRadiusAudit(t, nodes[1], admin, "login.challenge", 2)
	checkRadiusAudit(t, nodes[1], admin, "factor.verify", 1)
	checkRadiusAudit(t, nodes[0], admin, "login.refused", 4)

	// A challenge outlives the keyfleetd that asked: A is killed, and
	// the NAS's next server, B, takes the answer.
	r = radclient(t, a, "ivy", tablet.code(time.Now()))
	if r.code != "Access-Challenge" {
		t.Fatalf("A, a second sign-in: %s %v\n%s", r.code, r.attrs, r.out)
	}
	nodes[0].Kill()
	if r := radclient(t, b, "ivy", pick, "State = "+r.attrs["State"]); r.code != "Access-Challenge" || !strings.Contains(r.attrs["Reply-Message"], "Enter the code from Tablet") {
		t.Fatalf("B, after A was killed: %s %v\n%s", r.code, r.attrs, r.out)
	}
}

// checkRadiusAudit checks that at least n events of action came from the
// RADIUS listener and name the NAS and the calling station.
func checkRadiusAudit(t *testing.T, d *kftest.Daemon, admin, action string, n int) {
	t.Helper()
	var page struct{ Items []api.AuditEvent }
	d.MustCall(200, admin, "GET", "/v1/audit?action="+action+"&limit=100", nil, &page)
	got := 0
	for _, ev := range page.Items {
		if ev.Actor.Auth != "radius" {
			continue
		}
		if ev.Extra["nas_identifier"] != "vpn-gw1.example" || ev.Extra["calling_station_id"] != "203.0.113.9" || ev.Extra["radius_client"] != "vpn-gw1" {
			t.Errorf("%s event %d lacks the NAS or the calling station: %v", action, ev.Seq, ev.Extra)
		}
		got++
	}
	if got < n {
		t.Errorf("%d %s events from RADIUS, want %d", got, action, n)
	}
}

// TestARadiusUsersRateLimitHoldsAcrossKeyfleetd: a guesser who spreads
// one user's attempts over both keyfleetd gets no more than the user's
// burst in all: the buckets are in the database.
func TestARadiusUsersRateLimitHoldsAcrossKeyfleetd(t *testing.T) {
	const burst = 6 // radius.rate_limit.user_burst's default; 0.2/s refills one in 5 s
	nodes, addrs, _ := radiusNodes(t, 2, burst)
	for i := range burst {
		r := radclient(t, addrs[i%2], "ivy", "000000")
		if r.code != "Access-Reject" || strings.Contains(r.attrs["Reply-Message"], "Too many") {
			t.Fatalf("attempt %d, to %s: %s %v\n%s", i+1, nodes[i%2].Name, r.code, r.attrs, r.out)
		}
	}
	for _, addr := range addrs {
		if r := radclient(t, addr, "IVY ", "000000"); r.code != "Access-Reject" || !strings.Contains(r.attrs["Reply-Message"], "Too many sign-in attempts") {
			t.Fatalf("one attempt past the burst, to %s: %s %v\n%s", addr, r.code, r.attrs, r.out)
		}
	}
	// Another user is not held back by ivy's guesser.
	if r := radclient(t, addrs[0], "jay", "000000"); r.code != "Access-Reject" || strings.Contains(r.attrs["Reply-Message"], "Too many") {
		t.Fatalf("another user: %s %v\n%s", r.code, r.attrs, r.out)
	}
}
