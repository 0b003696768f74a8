package daemon_test

import (
	"context"
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
// sweep is due; a first start sweeps at once.
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
	var first string
	for deadline := time.Now().Add(30 * time.Second); first == ""; time.Sleep(20 * time.Millisecond) {
		if m := usersGauge.FindStringSubmatch(scrape(t, hc, url)); m != nil {
			if _, err := os.Stat(kept); err == nil {
				first = m[1]
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("a first start set no compliance gauges, or kept none, within 30 s")
		}
	}
	stop()

	url, hc, stop, err = serve(dir, cfg, quiet(daemon.Options{}))
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	m := usersGauge.FindStringSubmatch(scrape(t, hc, url))
	if m == nil || m[1] != first {
		t.Fatalf("the first scrape after a restart: users gauge %v, want %s as kept", m, first)
	}
}
