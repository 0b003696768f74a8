package daemon_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/keyfleet/keyfleet/daemon"
)

// scrape is keyfleetd's /metrics.
func scrape(t *testing.T, hc *http.Client, url string) string {
	t.Helper()
	resp, err := hc.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

var usersGauge = regexp.MustCompile(`(?m)^keyfleet_compliance_users\{group=""\} (\d+)$`)

// A restart shows the compliance gauges from its first scrape: the
// gauges of the last sweep, kept in the data folder, until the next
// sweep is due; a first start sweeps at once and keeps them.
func TestARestartKeepsTheComplianceGauges(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	if _, err := daemon.Init(context.Background(), daemon.InitOptions{Dir: dir}); err != nil {
		t.Fatal(err)
	}
	cfg := daemon.Config{DataDir: dir}
	url, hc, stop, err := serve(dir, cfg, quiet(daemon.Options{}))
	if err != nil {
		t.Fatal(err)
	}
	kept := filepath.Join(dir, "compliance-gauges.json")
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		_, err := os.Stat(kept)
		if err == nil && usersGauge.MatchString(scrape(t, hc, url)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a first start set no compliance gauges, or kept none, within 30 s")
		}
	}
	stop()

	// The kept counts, as a sweep a minute before the restart left them
	// (a count no sweep of this store gives, so that a sweep at the start
	// would show).
	b, err := os.ReadFile(kept)
	if err != nil {
		t.Fatal(err)
	}
	var saved map[string]any
	if err := json.Unmarshal(b, &saved); err != nil {
		t.Fatal(err)
	}
	saved["generated_at"] = time.Now().Add(-time.Minute).UTC().Format(time.RFC3339Nano)
	saved["overall"].(map[string]any)["users"] = 4242
	b, _ = json.Marshal(saved)
	if err := os.WriteFile(kept, b, 0o600); err != nil {
		t.Fatal(err)
	}
	url, hc, stop, err = serve(dir, cfg, quiet(daemon.Options{}))
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	for range 3 { // and no sweep replaces them meanwhile
		if m := usersGauge.FindStringSubmatch(scrape(t, hc, url)); m == nil || m[1] != "4242" {
			t.Fatalf("a scrape after a restart: users gauge %v, want 4242 as kept", m)
		}
		time.Sleep(100 * time.Millisecond) // a sweep of this store takes a few milliseconds
	}
}
