package web

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/keyfleet/keyfleet/api"
)

func TestTheOverviewShowsEachDirectorySourceAndItsDrift(t *testing.T) {
	h := newTestHandler(t)
	at := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	ov := &api.DirectoryOverview{Unlinked: 2, Sources: []api.DirectoryStatus{
		{Source: "corp", Kind: api.DirectoryLDAP, Configured: true, Linked: 5, Active: 4, Gone: []string{"erin"}, Conflicts: []string{"bob"}, NextSyncAt: &at,
			Last: &api.DirectorySyncReport{Mode: api.SyncIncremental, FinishedAt: at, Created: 3, Disabled: 1, Requested: 1}},
		{Source: "old-ad", Kind: api.DirectoryLDAP, Last: &api.DirectorySyncReport{Mode: api.SyncFull, FinishedAt: at, Error: "directory unreachable: connecting to ldaps://dc1"}},
		{Source: "scim:okta", Kind: api.DirectorySCIM, Linked: 7, Active: 7},
	}}
	w := httptest.NewRecorder()
	rq := &request{w: w, r: httptest.NewRequest("GET", "/admin", nil), id: "r1"}
	h.render(rq, 200, "overview", "Overview", overview{Directory: ov})
	body := w.Body.String()
	for _, want := range []string{`id="directory"`, "corp", "3 created", "1 waiting for approval", "gone from the directory: erin",
		"usernames held by users made by hand: bob", "failed", "directory unreachable", "pushed by the client", "4 / 5", "2 active people come from no directory"} {
		if !strings.Contains(body, want) {
			t.Errorf("the overview lacks %q", want)
		}
	}
}
