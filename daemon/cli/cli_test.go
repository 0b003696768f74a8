package cli

import (
	"strings"
	"testing"

	"github.com/keyfleet/keyfleet/daemon"
)

func TestInitTellsEachFounderHowToEnrolTheirFirstKey(t *testing.T) {
	// keyfleet-agent enroll asks for a pass when --code does not give it;
	// it has no --pass flag, so init must not name one.
	var out strings.Builder
	printInit(&out, daemon.InitResult{Dir: "var/keyfleet", AdminUser: "admin",
		FounderPassFiles: map[string]string{"admin": "var/keyfleet/bootstrap/admin.pass", "bob": "var/keyfleet/bootstrap/bob.pass"}})
	for _, who := range []string{"admin", "bob"} {
		line := "var/keyfleet/bootstrap/" + who + ".pass (for " + who + " alone: their first security key, 72h, at /welcome or with keyfleet-agent enroll, which asks for it)"
		if !strings.Contains(out.String(), line) {
			t.Errorf("init's output lacks %q:\n%s", line, out.String())
		}
	}
	if strings.Contains(out.String(), "--pass") {
		t.Errorf("init names a flag keyfleet-agent enroll does not have:\n%s", out.String())
	}
}
