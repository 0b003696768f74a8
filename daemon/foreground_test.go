package daemon

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/keyfleet/keyfleet/daemon/foreground"
)

// Every request keyfleetd's listener serves is counted while it is
// served, for the sweep to give way to, and no longer once it ends.
func TestRequestsAreCountedWhileServed(t *testing.T) {
	g := &foreground.Gate{}
	inside := -1
	h := counted(g, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { inside = g.InFlight() }))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/v1/users", nil))
	if inside != 1 || g.InFlight() != 0 {
		t.Fatalf("in flight while served %d, after %d; want 1 and 0", inside, g.InFlight())
	}
}
