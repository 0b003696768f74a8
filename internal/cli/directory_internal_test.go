package cli

import (
	"strings"
	"testing"

	"github.com/keyfleet/keyfleet/api"
)

// A sync that went another way than configured (IN_CHAIN not answered)
// says so in its one-line summary, which `directory status` shows.
func TestASyncSummaryCountsItsWarnings(t *testing.T) {
	rep := api.DirectorySyncReport{Seen: 5, Created: 5, Changes: []api.DirectoryChange{
		{What: api.ChangeCreated, Username: "alice"},
		{What: api.ChangeWarning, Detail: "did not answer LDAP_MATCHING_RULE_IN_CHAIN"},
	}}
	if got := summary(rep); !strings.Contains(got, "5 created") || !strings.Contains(got, "1 warning(s)") {
		t.Fatalf("summary: %q", got)
	}
	rep.Changes = rep.Changes[:1]
	if got := summary(rep); strings.Contains(got, "warning") {
		t.Fatalf("a sync without warnings: %q", got)
	}
}
