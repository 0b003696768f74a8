package events_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/events"
)

func TestSeverity(t *testing.T) {
	tests := []struct {
		name string
		ev   api.AuditEvent
		want string
	}{
		{"opening a break-glass session is high", api.AuditEvent{Action: "breakglass.start"}, events.SeverityHigh},
		{"a failed break-glass attempt is high", api.AuditEvent{Action: "breakglass.failed"}, events.SeverityHigh},
		{"any action in a break-glass session is high", api.AuditEvent{Action: "user.create", Extra: map[string]string{"breakglass": "true"}}, events.SeverityHigh},
		{"a replayed code or counter regression is high", api.AuditEvent{Action: "factor.verify_failed", Extra: map[string]string{"suspicious": "true"}}, events.SeverityHigh},
		{"a plain wrong code is a warning", api.AuditEvent{Action: "factor.verify_failed", Extra: map[string]string{"reason": "wrong code"}}, events.SeverityWarning},
		{"locking recovery is high", api.AuditEvent{Action: "recovery.locked"}, events.SeverityHigh},
		{"a push reported as not the user's is high", api.AuditEvent{Action: "push.reported"}, events.SeverityHigh},
		{"a push nobody answered is a warning", api.AuditEvent{Action: "push.unanswered"}, events.SeverityWarning},
		{"a lockout is high", api.AuditEvent{Action: "user.lockout"}, events.SeverityHigh},
		{"an attestation failure is high", api.AuditEvent{Action: "enrolment.attestation_failed"}, events.SeverityHigh},
		{"a sign-counter regression is high", api.AuditEvent{Action: "factor.counter_regression"}, events.SeverityHigh},
		{"a failed attestation flagged in extra is high", api.AuditEvent{Action: "enrolment.complete", Extra: map[string]string{"attestation": "failed"}}, events.SeverityHigh},
		{"a lost device is high", api.AuditEvent{Action: "device.lost"}, events.SeverityHigh},
		{"an audit chain problem is high", api.AuditEvent{Action: "audit.chain_broken"}, events.SeverityHigh},
		{"approving an MFA reset is high", api.AuditEvent{Action: "approval.approve", Extra: map[string]string{"requested_action": api.ActionUserResetMFA}}, events.SeverityHigh},
		{"every approval is high", api.AuditEvent{Action: "approval.approve", Extra: map[string]string{"requested_action": "user.access"}}, events.SeverityHigh},
		{"a change of privilege is high", api.AuditEvent{Action: "user.update", Extra: map[string]string{"privilege": "true"}}, events.SeverityHigh},
		{"a refused attempt to approve is high", api.AuditEvent{Action: "approval.refused", Extra: map[string]string{"refused": "self-approval"}}, events.SeverityHigh},
		{"a plain profile change is notice", api.AuditEvent{Action: "user.update"}, events.SeverityNotice},
		{"a dead letter is high", api.AuditEvent{Action: events.ActionDeadLetter}, events.SeverityHigh},
		{"revoking a factor is a warning", api.AuditEvent{Action: "factor.revoke"}, events.SeverityWarning},
		{"a denied approval is a warning", api.AuditEvent{Action: "approval.deny"}, events.SeverityWarning},
		{"a failed verification is a warning", api.AuditEvent{Action: "factor.verify", Extra: map[string]string{"outcome": "bad_code"}}, events.SeverityWarning},
		{"a good verification is info", api.AuditEvent{Action: "factor.verify", Extra: map[string]string{"outcome": "ok"}}, events.SeverityInfo},
		{"creating a user is notice", api.AuditEvent{Action: "user.create"}, events.SeverityNotice},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := events.Severity(tt.ev.Action, tt.ev); got != tt.want {
				t.Errorf("Severity(%q) = %s, want %s", tt.ev.Action, got, tt.want)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	const secret = "0123456789abcdef-very-secret"
	hook := func(u string) *events.WebhookConfig { return &events.WebhookConfig{URL: u, Secret: secret} }
	tests := []struct {
		name    string
		sinks   []events.SinkConfig
		wantErr string // "" for valid
	}{
		{"a file sink with a path is valid", []events.SinkConfig{{Name: "f", Type: "file", File: &events.FileConfig{Path: "/tmp/x"}}}, ""},
		{"a sink needs a name", []events.SinkConfig{{Type: "file", File: &events.FileConfig{Path: "/x"}}}, "name"},
		{"names are unique", []events.SinkConfig{{Name: "a", Type: "file", File: &events.FileConfig{Path: "/x"}}, {Name: "a", Type: "file", File: &events.FileConfig{Path: "/y"}}}, "used twice"},
		{"an unknown type is refused", []events.SinkConfig{{Name: "a", Type: "kafka"}}, "type \"kafka\""},
		{"the section must match the type", []events.SinkConfig{{Name: "a", Type: "syslog", File: &events.FileConfig{Path: "/x"}}}, "exactly one"},
		{"syslog needs a known network", []events.SinkConfig{{Name: "s", Type: "syslog", Syslog: &events.SyslogConfig{Network: "sctp", Address: "127.0.0.1:514"}}}, "syslog.network"},
		{"syslog needs a known facility", []events.SinkConfig{{Name: "s", Type: "syslog", Syslog: &events.SyslogConfig{Network: "udp", Address: "127.0.0.1:514", Facility: "nope"}}}, "facility"},
		{"webhooks must be https", []events.SinkConfig{{Name: "w", Type: "webhook", Webhook: hook("http://127.0.0.1/x")}}, "use https"},
		{"webhook URLs carry no credentials", []events.SinkConfig{{Name: "w", Type: "webhook", Webhook: hook("https://u:pw@127.0.0.1/x")}}, "credentials"},
		{"a webhook needs a secret", []events.SinkConfig{{Name: "w", Type: "webhook", Webhook: &events.WebhookConfig{URL: "https://127.0.0.1/"}}}, "secret"},
		{"a short secret is refused", []events.SinkConfig{{Name: "w", Type: "webhook", Webhook: &events.WebhookConfig{URL: "https://127.0.0.1/", Secret: "short"}}}, "too short"},
		{"a bad action glob is refused", []events.SinkConfig{{Name: "f", Type: "file", File: &events.FileConfig{Path: "/x"}, Filter: events.Filter{Actions: []string{"factor.["}}}}, "filter.actions"},
		{"an unknown severity is refused", []events.SinkConfig{{Name: "f", Type: "file", File: &events.FileConfig{Path: "/x"}, Filter: events.Filter{Severities: []string{"urgent"}}}}, "filter.severities"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := events.Config{Sinks: tt.sinks}
			err := cfg.Validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("Validate = %v, want an error about %q", err, tt.wantErr)
			case err != nil && !errors.Is(err, events.ErrInvalidConfig):
				t.Fatalf("error does not wrap ErrInvalidConfig: %v", err)
			case err != nil && strings.Contains(err.Error(), secret):
				t.Fatalf("error shows the webhook secret: %v", err)
			}
		})
	}
}

func TestWebhookConfigStringHidesTheSecret(t *testing.T) {
	w := events.WebhookConfig{URL: "https://siem.example/hook?token=abc", Secret: "0123456789abcdef-secret"}
	if s := w.String(); strings.Contains(s, "secret") || strings.Contains(s, "abc") {
		t.Fatalf("String() = %q shows a secret", s)
	}
}

func readLines(t testing.TB, path string) []events.Event {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []events.Event
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var ev events.Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("%s: a line is not JSON: %v: %.80q", path, err, sc.Text())
		}
		out = append(out, ev)
	}
	return out
}

func seqsOf(evs []events.Event) []uint64 {
	out := make([]uint64, len(evs))
	for i, ev := range evs {
		out[i] = ev.Seq
	}
	return out
}

func TestFileSinkWritesEveryEventAndRotates(t *testing.T) {
	l := newLog(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "events.jsonl")
	reg := prometheus.NewRegistry()
	cfg := events.Config{Sinks: []events.SinkConfig{{Name: "file", Type: "file", BatchSize: 7,
		File: &events.FileConfig{Path: path, MaxSizeMB: 1, MaxFiles: 2}}}}
	m, stop := run(t, l, cfg, events.Options{Registerer: reg})
	l.add(t, 40, "staff")
	waitFor(t, "the file sink to catch up", func() bool { return status(m, "file").LastDelivered == l.head() })
	stop()
	evs := readLines(t, path)
	checkComplete(t, seqsOf(evs), l.head())
	ev := evs[0]
	if ev.Schema != events.Schema || ev.Severity != events.SeverityNotice || ev.Action != "user.create" || ev.Hash == "" {
		t.Errorf("first event = %+v", ev)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Errorf("file mode %v, want 0600", st.Mode().Perm())
	}
	if got := gather(t, reg, "keyfleet_events_delivered_total"); got != float64(l.head()) {
		t.Errorf("delivered_total = %v, want %d", got, l.head())
	}
}

func TestFileSinkKeepsMaxFiles(t *testing.T) {
	l := newLog(t)
	path := filepath.Join(t.TempDir(), "e.jsonl")
	l.add(t, 1)
	cfg := events.Config{Sinks: []events.SinkConfig{{Name: "f", Type: "file", BatchSize: 1,
		File: &events.FileConfig{Path: path, MaxSizeMB: 1, MaxFiles: 2}}}}
	// Pre-fill the file to just under 1 MiB so each batch rotates.
	if err := os.WriteFile(path, []byte(strings.Repeat("x", 1<<20-10)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for i, body := range []string{"older\n", "oldest\n"} {
		if err := os.WriteFile(fmt.Sprintf("%s.%d", path, i+1), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	m, stop := run(t, l, cfg, events.Options{})
	waitFor(t, "delivery", func() bool { return status(m, "f").LastDelivered == l.head() })
	stop()
	if b, _ := os.ReadFile(path + ".2"); string(b) != "older\n" {
		t.Errorf("%s.2 holds %.20q, want the file that was .1", path, b)
	}
	if b, _ := os.ReadFile(path + ".1"); !strings.HasPrefix(string(b), "xxx") {
		t.Errorf("%s.1 holds %.20q, want the rotated file", path, b)
	}
	if _, err := os.Stat(path + ".3"); !os.IsNotExist(err) {
		t.Errorf("%s.3 exists: only max_files (2) rotated files are kept", path)
	}
	if evs := readLines(t, path); len(evs) != 1 {
		t.Errorf("the new file holds %d events, want 1", len(evs))
	}
}

func TestFileSinkEndsALineCutShortByACrash(t *testing.T) {
	l := newLog(t)
	path := filepath.Join(t.TempDir(), "e.jsonl")
	if err := os.WriteFile(path, []byte(`{"schema":"keyfleet.audit/v1","seq":1,"act`), 0o600); err != nil {
		t.Fatal(err)
	}
	l.add(t, 2)
	m, stop := run(t, l, events.Config{Sinks: []events.SinkConfig{{Name: "f", Type: "file", File: &events.FileConfig{Path: path}}}}, events.Options{})
	waitFor(t, "delivery", func() bool { return status(m, "f").LastDelivered == l.head() })
	stop()
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[1], `{"schema"`) {
		t.Fatalf("lines after the cut = %q", lines)
	}
}

func TestFilterSelectsActionsSeveritiesAndGroups(t *testing.T) {
	l := newLog(t)
	dir := t.TempDir()
	sink := func(name string, f events.Filter) events.SinkConfig {
		return events.SinkConfig{Name: name, Type: "file", Filter: f, File: &events.FileConfig{Path: filepath.Join(dir, name)}}
	}
	cfg := events.Config{Sinks: []events.SinkConfig{
		sink("users", events.Filter{Actions: []string{"user.*"}}),
		sink("factors", events.Filter{Actions: []string{"factor.*"}}),
		sink("high", events.Filter{Severities: []string{"high"}}),
		sink("admins", events.Filter{Groups: []string{"admins"}}),
	}}
	lookups := 0
	groups := func(context.Context, string) ([]string, error) { lookups++; return nil, nil }
	m, stop := run(t, l, cfg, events.Options{Groups: groups})
	l.add(t, 3, "staff")
	l.add(t, 2, "admins", "staff")
	waitFor(t, "every sink to catch up", func() bool {
		return !slices.ContainsFunc(m.Status(), func(s events.SinkStatus) bool { return s.LastDelivered != l.head() })
	})
	stop()
	count := func(name string) int {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			return 0
		}
		return len(readLines(t, filepath.Join(dir, name)))
	}
	if got := []int{count("users"), count("factors"), count("high"), count("admins")}; !slices.Equal(got, []int{5, 0, 0, 2}) {
		t.Errorf("events per sink (users, factors, high, admins) = %v, want [5 0 0 2]", got)
	}
	if lookups != 0 {
		t.Errorf("user events carry their groups, yet the lookup ran %d times", lookups)
	}
}

func TestReplayChecksItsArguments(t *testing.T) {
	l := newLog(t)
	l.add(t, 3)
	m, _ := run(t, l, events.Config{Sinks: []events.SinkConfig{{Name: "f", Type: "file", File: &events.FileConfig{Path: filepath.Join(t.TempDir(), "f")}}}}, events.Options{})
	ctx := context.Background()
	if err := m.Replay(ctx, "nope", 1); !errors.Is(err, events.ErrUnknownSink) {
		t.Errorf("Replay(unknown sink) = %v", err)
	}
	for _, from := range []uint64{0, 5} {
		if err := m.Replay(ctx, "f", from); !errors.Is(err, events.ErrBadReplay) {
			t.Errorf("Replay(from %d) = %v", from, err)
		}
	}
	if err := m.Replay(ctx, "f", 4); err != nil {
		t.Errorf("Replay(from head+1) = %v; it should skip to the head", err)
	}
}

func TestFileCursorsSurviveReopening(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cursors.json")
	ctx := context.Background()
	c, err := events.OpenFileCursors(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Cursor(ctx, "a"); !errors.Is(err, events.ErrNoCursor) {
		t.Fatalf("Cursor of a new sink = %v, want ErrNoCursor", err)
	}
	if err := c.SetCursor(ctx, "a", 42); err != nil {
		t.Fatal(err)
	}
	if err := c.AddDeadLetter(ctx, events.DeadLetter{Sink: "a", FromSeq: 3, ToSeq: 4, Seqs: []uint64{3, 4}}); err != nil {
		t.Fatal(err)
	}
	c2, err := events.OpenFileCursors(path)
	if err != nil {
		t.Fatal(err)
	}
	seq, err := c2.Cursor(ctx, "a")
	dls, _ := c2.DeadLetters(ctx, "a")
	if err != nil || seq != 42 || len(dls) != 1 || dls[0].FromSeq != 3 {
		t.Fatalf("after reopening: cursor %d (%v), dead letters %+v", seq, err, dls)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Errorf("cursor file mode %v, want 0600", st.Mode().Perm())
	}
}

// gather sums the values of a metric family.
func gather(t testing.TB, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return sum
}
