package events_test

import (
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/keyfleet/keyfleet/daemon/events"
)

func fileSink(name, path string) events.SinkConfig {
	return events.SinkConfig{Name: name, Type: events.TypeFile, File: &events.FileConfig{Path: path}}
}

func TestReloadAddsChangesAndRemovesSinksWhileTheyRun(t *testing.T) {
	l := newLog(t)
	dir := t.TempDir()
	p := func(name string) string { return filepath.Join(dir, name+".jsonl") }
	reg := newRegistry()
	m, stop := run(t, l, events.Config{Sinks: []events.SinkConfig{fileSink("kept", p("kept")), fileSink("moved", p("moved")), fileSink("dropped", p("dropped"))}},
		events.Options{Registerer: reg})
	l.add(t, 10)
	caughtUp := func(names ...string) func() bool {
		return func() bool {
			for _, n := range names {
				if status(m, n).LastDelivered != l.head() {
					return false
				}
			}
			return true
		}
	}
	waitFor(t, "every sink to deliver the first events", caughtUp("kept", "moved", "dropped"))
	before := l.head()

	res, err := m.Reload(events.Config{PollInterval: events.Duration{Duration: 20e6}, Sinks: []events.SinkConfig{
		fileSink("kept", p("kept")), fileSink("moved", p("moved-here")), fileSink("new", p("new"))}})
	if err != nil {
		t.Fatal(err)
	}
	want := events.ReloadResult{Added: []string{"new"}, Changed: []string{"moved"}, Removed: []string{"dropped"}, Unchanged: []string{"kept"}}
	if !slices.Equal(res.Added, want.Added) || !slices.Equal(res.Changed, want.Changed) || !slices.Equal(res.Removed, want.Removed) || !slices.Equal(res.Unchanged, want.Unchanged) {
		t.Fatalf("reload result %+v, want %+v", res, want)
	}
	l.add(t, 5)
	waitFor(t, "the reloaded sinks to deliver the new events", caughtUp("kept", "moved", "new"))
	stop()

	checkComplete(t, seqsOf(readLines(t, p("kept"))), l.head())
	if st := status(m, "kept"); st.Delivered != l.head() {
		t.Errorf("the unchanged sink was restarted: it counts %d deliveries, want %d", st.Delivered, l.head())
	}
	if got := seqsOf(readLines(t, p("moved-here"))); len(got) == 0 || got[0] != before+1 || got[len(got)-1] != l.head() {
		t.Errorf("the changed sink did not continue from its cursor: %v (the first %d went to the old file)", got, before)
	}
	checkComplete(t, seqsOf(readLines(t, p("new"))), l.head())
	if got := seqsOf(readLines(t, p("dropped"))); len(got) != int(before) {
		t.Errorf("the removed sink wrote %d events after it was removed", len(got)-int(before))
	}
	for _, s := range m.Status() {
		if s.Name == "dropped" {
			t.Error("the removed sink is still in the status")
		}
	}
	if n := series(t, reg, "keyfleet_events_delivered_total"); n != 3 {
		t.Errorf("%d delivered_total series, want 3 (the removed sink's series dropped)", n)
	}
}

func TestAReloadThatFailsChangesNothing(t *testing.T) {
	l := newLog(t)
	path := filepath.Join(t.TempDir(), "e.jsonl")
	m, stop := run(t, l, events.Config{Sinks: []events.SinkConfig{fileSink("siem", path)}}, events.Options{})
	tests := []struct {
		name string
		cfg  events.Config
		want string
	}{
		{"two sinks with one name", events.Config{Sinks: []events.SinkConfig{fileSink("a", path), fileSink("a", path)}}, "used twice"},
		{"a sink without its section", events.Config{Sinks: []events.SinkConfig{{Name: "b", Type: events.TypeWebhook}}}, "events.sinks[0]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := m.Reload(tt.cfg)
			if !errors.Is(err, events.ErrInvalidConfig) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("reload: %v, want ErrInvalidConfig and %q", err, tt.want)
			}
			if st := m.Status(); len(st) != 1 || st[0].Name != "siem" {
				t.Fatalf("the sinks changed: %+v", st)
			}
		})
	}
	l.add(t, 3)
	waitFor(t, "the old sink to keep delivering", func() bool { return status(m, "siem").LastDelivered == l.head() })
	stop()
	if _, err := m.Reload(events.Config{}); !errors.Is(err, events.ErrStopped) {
		t.Fatalf("a reload after Run ended: %v, want ErrStopped", err)
	}
}

// series counts the series of one metric.
func series(t *testing.T, reg *prometheus.Registry, name string) int {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return len(mf.GetMetric())
		}
	}
	return 0
}
