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
	"github.com/keyfleet/keyfleet/daemon/store"
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
		{"kept in this epoch: published", inEpoch(kept(2*time.Minute, 5_000), "e1"), true, start.Add(3 * time.Minute), true},
		{"kept in another epoch (a restore since), small: at once, not published", inEpoch(kept(2*time.Minute, 5_000), "e0"), true, start, false},
		{"kept in another epoch, large: after the start's grace, not published", inEpoch(kept(2*time.Minute, 1_000_000), "e0"), true, start.Add(startGrace), false},
		{"a large store whose last start put the sweep off and stopped: at once", putOff(kept(time.Hour, 1_000_000)), true, start, false},
		{"a restart two minutes after a sweep, put off before it: the kept gauges", putOff(kept(2*time.Minute, 1_000_000)), true, start.Add(3 * time.Minute), true},
	} {
		due, fresh := firstSweep(start, c.kept, c.ok, "e1")
		if !due.Equal(c.due) || fresh != c.fresh {
			t.Errorf("%s: due %v (fresh %v), want %v (%v)", c.name, due.Sub(start), fresh, c.due.Sub(start), c.fresh)
		}
	}
}

func inEpoch(sc savedCompliance, epoch string) savedCompliance { sc.Epoch = epoch; return sc }

func putOff(sc savedCompliance) savedCompliance {
	sc.DeferredAt = sc.GeneratedAt.Add(time.Second)
	return sc
}

// The kept gauges of a store restored since (a new epoch) are not shown;
// a start puts the first sweep of a large store off once, and the next
// start, finding it never made, sweeps at once.
func TestTheKeptGaugesFollowTheStoreAndAPutOffSweepIsMadeAtTheNextStart(t *testing.T) {
	var logs bytes.Buffer
	st, err := store.Open(store.Options{Dir: t.TempDir(), EncryptionKey: make([]byte, 32)})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	s := &Server{cfg: Config{DataDir: t.TempDir()}, log: slog.New(slog.NewJSONHandler(&logs, nil)), store: st}
	now := time.Now()
	large := api.ComplianceReport{GeneratedAt: now.Add(-time.Minute), Overall: api.ComplianceCounts{Users: 1_000_000, Compliant: 7}}
	s.saveCompliance(large)
	if due, kept, ok := s.firstCompliance(now); !ok || !due.Equal(large.GeneratedAt.Add(sweepEvery)) || kept.Overall != large.Overall || kept.Epoch != st.Epoch() {
		t.Fatalf("a restart a minute after a sweep: due in %v, shown %v (%+v)", due.Sub(now), ok, kept)
	}

	if _, err := st.NewEpoch(); err != nil { // what a restore does
		t.Fatal(err)
	}
	logs.Reset()
	due, _, ok := s.firstCompliance(now)
	if ok || !due.Equal(now.Add(startGrace)) {
		t.Fatalf("a start after a restore: due in %v, kept gauges shown %v; want none shown, a sweep after %v", due.Sub(now), ok, startGrace)
	}
	if !strings.Contains(logs.String(), "another store epoch") || !strings.Contains(logs.String(), "waits") {
		t.Fatalf("the start did not say why: %s", logs.String())
	}
	saved, found := s.loadCompliance()
	if !found || !saved.DeferredAt.Equal(now) || saved.Overall != large.Overall {
		t.Fatalf("the put-off sweep was not recorded: %+v", saved)
	}

	logs.Reset() // the next start, 30 s later, before the put-off sweep
	later := now.Add(30 * time.Second)
	if due, _, ok := s.firstCompliance(later); ok || !due.Equal(later) {
		t.Fatalf("a start after a put-off sweep never made: due in %v (shown %v), want at once", due.Sub(later), ok)
	}
	if !strings.Contains(logs.String(), "put its compliance sweep off") {
		t.Fatalf("the start did not say why it sweeps at once: %s", logs.String())
	}

	s.saveCompliance(api.ComplianceReport{GeneratedAt: later, Overall: large.Overall}) // the sweep, made
	if saved, _ := s.loadCompliance(); !saved.DeferredAt.IsZero() || saved.Epoch != st.Epoch() {
		t.Fatalf("a sweep kept %+v; want no put-off time and the new epoch", saved)
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
