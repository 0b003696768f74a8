package directory_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/directory"
)

// TestTheSyncsSeriesTellWhenTheDirectoryStopsReachingKeyfleet: the
// series the alert rules read (deploy/prometheus). A sync counts as ok
// with its changes and sets the time of the newest success; a dry run is
// not counted; a sync that cannot reach the directory counts as failed,
// sets last_sync_failed and leaves the newest success where it was; the
// next sync after the directory is back clears it.
func TestTheSyncsSeriesTellWhenTheDirectoryStopsReachingKeyfleet(t *testing.T) {
	w := smallWorld(t)
	w.cfg.Interval = directory.Duration{Duration: 15 * time.Minute}
	reg := prometheus.NewRegistry()
	s := w.syncer(directory.Options{Registerer: reg})
	gather := func(names ...string) string {
		t.Helper()
		var b strings.Builder
		for _, n := range names {
			mfs, err := reg.Gather()
			if err != nil {
				t.Fatal(err)
			}
			for _, mf := range mfs {
				if mf.GetName() == n {
					for _, m := range mf.GetMetric() {
						for _, l := range m.GetLabel() {
							b.WriteString(l.GetName() + "=" + l.GetValue() + " ")
						}
						switch {
						case m.Counter != nil:
							fmt.Fprintf(&b, "%s %v\n", n, m.Counter.GetValue())
						case m.Gauge != nil:
							fmt.Fprintf(&b, "%s %v\n", n, m.Gauge.GetValue())
						case m.Histogram != nil:
							fmt.Fprintf(&b, "%s count %d\n", n, m.Histogram.GetSampleCount())
						}
					}
				}
			}
		}
		return b.String()
	}
	if got := gather("keyfleet_directory_sync_interval_seconds"); got != "source=corp keyfleet_directory_sync_interval_seconds 900\n" {
		t.Fatalf("the interval: %q", got)
	}

	mustSync(t, s, api.DirectorySync{DryRun: true})
	if got := gather("keyfleet_directory_syncs_total", "keyfleet_directory_last_sync_failed"); got != "" {
		t.Fatalf("a dry run was counted:\n%s", got)
	}
	rep := mustSync(t, s, api.DirectorySync{})
	if got := gather("keyfleet_directory_syncs_total", "keyfleet_directory_last_sync_failed", "keyfleet_directory_sync_duration_seconds"); got != ""+
		"mode=full outcome=ok source=corp keyfleet_directory_syncs_total 1\n"+
		"source=corp keyfleet_directory_last_sync_failed 0\n"+
		"mode=full source=corp keyfleet_directory_sync_duration_seconds count 1\n" {
		t.Fatalf("after a full sync:\n%s", got)
	}
	if got := gather("keyfleet_directory_changes_total"); !strings.Contains(got, "change=created source=corp keyfleet_directory_changes_total 5\n") ||
		!strings.Contains(got, "change=requested source=corp keyfleet_directory_changes_total 2\n") {
		t.Fatalf("the changes of a sync that created 5 users and filed 2 roles:\n%s", got)
	}
	success := gather("keyfleet_directory_last_success_timestamp_seconds")
	if want := "source=corp keyfleet_directory_last_success_timestamp_seconds " + fmt.Sprint(float64(rep.FinishedAt.UnixNano())/1e9) + "\n"; success != want {
		t.Fatalf("the newest success: %q, want %q", success, want)
	}

	w.ldap.Kill()
	if _, err := s.Sync(context.Background(), api.DirectorySync{Incremental: true}); !errors.Is(err, directory.ErrUnreachable) {
		t.Fatalf("a sync with the directory down: %v", err)
	}
	if got := gather("keyfleet_directory_last_sync_failed"); got != "source=corp keyfleet_directory_last_sync_failed 1\n" {
		t.Fatalf("after a failed sync: %q", got)
	}
	if got := gather("keyfleet_directory_last_success_timestamp_seconds"); got != success {
		t.Fatalf("a failed sync moved the newest success: %q, was %q", got, success)
	}
	if got := gather("keyfleet_directory_syncs_total"); !strings.Contains(got, "mode=incremental outcome=failed source=corp keyfleet_directory_syncs_total 1\n") {
		t.Fatalf("failed syncs:\n%s", got)
	}
	w.ldap.Restart(t)
	mustSync(t, s, api.DirectorySync{Incremental: true})
	if got := gather("keyfleet_directory_last_sync_failed"); got != "source=corp keyfleet_directory_last_sync_failed 0\n" {
		t.Fatalf("after the directory came back: %q", got)
	}
}
