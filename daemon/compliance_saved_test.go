package daemon

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyfleet/keyfleet/api"
)

func TestTheFirstSweepOfARun(t *testing.T) {
	start := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	kept := func(ago time.Duration, users int) savedCompliance {
		return savedCompliance{GeneratedAt: start.Add(-ago), Overall: api.ComplianceCounts{Users: users}}
	}
	for _, c := range []struct {
		name  string
		kept  savedCompliance
		ok    bool
		due   time.Time
		fresh bool
	}{
		{"nothing kept: at once", savedCompliance{}, false, start, false},
		{"a restart two minutes after a sweep: the kept gauges until the next is due", kept(2*time.Minute, 1_000_000), true, start.Add(3 * time.Minute), true},
		{"a small store after a long stop: at once", kept(time.Hour, 5_000), true, start, false},
		{"a large store after a long stop: after the start's grace", kept(time.Hour, 1_000_000), true, start.Add(startGrace), false},
		{"a sweep exactly one interval ago is due", kept(sweepEvery, 5_000), true, start, false},
		{"kept by a clock ahead of this one: at once, not published", kept(-time.Hour, 1_000_000), true, start, false},
	} {
		due, fresh := firstSweep(start, c.kept, c.ok)
		if !due.Equal(c.due) || fresh != c.fresh {
			t.Errorf("%s: due %v (fresh %v), want %v (%v)", c.name, due.Sub(start), fresh, c.due.Sub(start), c.fresh)
		}
	}
}

func TestTheComplianceGaugesAreKeptForTheNextStart(t *testing.T) {
	var logs bytes.Buffer
	s := &Server{cfg: Config{DataDir: t.TempDir()}, log: slog.New(slog.NewJSONHandler(&logs, nil))}
	if _, ok := s.loadCompliance(); ok || logs.Len() != 0 {
		t.Fatalf("a first start found kept gauges (%v) or logged %q", ok, logs.String())
	}
	r := api.ComplianceReport{GeneratedAt: time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC),
		Overall:      api.ComplianceCounts{Users: 12, NonCompliant: 3, Adoption: 0.75},
		ByGroup:      map[string]api.ComplianceCounts{"eng": {Users: 4, Grace: 1}},
		NonCompliant: []api.ReportUser{{UserID: "usr_1", Username: "carol"}}}
	s.saveCompliance(r)
	got, ok := s.loadCompliance()
	if !ok || !got.GeneratedAt.Equal(r.GeneratedAt) || got.Overall != r.Overall || got.ByGroup["eng"] != r.ByGroup["eng"] {
		t.Fatalf("kept %+v (%v), want the report's counts", got, ok)
	}
	path := filepath.Join(s.cfg.DataDir, savedComplianceFile)
	b, _ := os.ReadFile(path)
	if strings.Contains(string(b), "carol") || strings.Contains(string(b), "usr_1") {
		t.Fatalf("the kept gauges name a user: %s", b)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("the file's mode: %v, %v", fi.Mode().Perm(), err)
	}
	for _, bad := range []string{"{not json", `{"overall":{"users":3}}`} {
		os.WriteFile(path, []byte(bad), 0o600)
		logs.Reset()
		if _, ok := s.loadCompliance(); ok || !strings.Contains(logs.String(), "cannot be read") || !strings.Contains(logs.String(), "sweeps at once") {
			t.Fatalf("a damaged file %q was taken (%v) or not reported: %s", bad, ok, logs.String())
		}
	}
	s.cfg.DataDir = filepath.Join(s.cfg.DataDir, "gone") // a write that fails is reported, not fatal
	logs.Reset()
	s.saveCompliance(r)
	if !strings.Contains(logs.String(), "keeping the compliance gauges") {
		t.Fatalf("a failed write was not reported: %s", logs.String())
	}
}
