package failover

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/integration/kftest"
)

// redeem tries an enrolment code from the client address from on d and
// returns the status, and Retry-After on a 429.
func redeem(t *testing.T, d *kftest.Daemon, from, code string) (int, string) {
	t.Helper()
	var p api.Problem
	status, err := kftest.CallFrom(d.HTTP, from, "", "POST", d.URL+"/v1/enrolments/redeem", api.RedeemEnrolmentCode{Code: code}, &p)
	if err != nil {
		t.Fatal(err)
	}
	if status == http.StatusTooManyRequests && p.Type != "/problems/rate-limited" {
		t.Fatalf("a 429 with problem %+v", p)
	}
	return status, p.Detail
}

// TestAGuesserGainsNothingBySpreadingAttemptsOverTwoKeyfleetd: the limits
// on guessing enrolment codes (docs/security.md, "Rate limits") are kept
// in the database, so that a guesser who alternates between the
// keyfleetd behind a load balancer gets one budget, not one per
// keyfleetd: ten attempts a minute from an address, twenty a minute on
// one enrolment from all addresses together.
func TestAGuesserGainsNothingBySpreadingAttemptsOverTwoKeyfleetd(t *testing.T) {
	dirs, _, admin := setup(t, 2)
	nodes := serveAll(t, dirs)
	for i := range 10 {
		if status, _ := redeem(t, nodes[i%2], "198.51.100.7", "enr_nothing.AAAA"); status == http.StatusTooManyRequests {
			t.Fatalf("attempt %d from one address was refused by the limit", i+1)
		}
	}
	for i, n := range nodes {
		status, detail := redeem(t, n, "198.51.100.7", "enr_nothing.AAAA")
		if status != http.StatusTooManyRequests || !strings.Contains(detail, "this address") {
			t.Fatalf("attempt %d from the address on k%d: %d %q, want 429 for the address", 11+i, i+1, status, detail)
		}
	}

	// One enrolment, guessed from many addresses over both keyfleetd.
	nodes[0].MustCall(201, admin, "POST", "/v1/users", api.CreateUser{Username: "victim"}, nil)
	var en api.Enrolment
	nodes[0].MustCall(201, admin, "POST", "/v1/enrolments", api.CreateEnrolment{User: "victim", Kind: "totp"}, &en)
	id, _, _ := strings.Cut(en.Code, ".")
	wrong := id + ".QUJDREVGR0hJSktMTU5PUA"
	for i := range 20 {
		if status, _ := redeem(t, nodes[i%2], fmt.Sprintf("203.0.113.%d", i+1), wrong); status == http.StatusTooManyRequests {
			t.Fatalf("guess %d on the enrolment was refused by the limit", i+1)
		}
	}
	status, detail := redeem(t, nodes[1], "203.0.113.200", wrong)
	if status != http.StatusTooManyRequests || !strings.Contains(detail, "all addresses together") {
		t.Fatalf("guess 21 on the enrolment: %d %q, want 429 for the enrolment", status, detail)
	}
	// The holder, from their own address, is held back too until the
	// bucket refills: the limit protects the code, not the guesser.
	if status, _ := redeem(t, nodes[0], "192.0.2.10", en.Code); status != http.StatusTooManyRequests {
		t.Fatalf("the right code right after 20 guesses: %d, want 429", status)
	}
}
