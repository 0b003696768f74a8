package events

import (
	"bytes"
	"log/slog"
	"path"
	"strings"
	"testing"
	"time"

	"github.com/keyfleet/keyfleet/api"
)

func TestSyslogFormat(t *testing.T) {
	ev := Event{Schema: Schema, Severity: SeverityHigh, AuditEvent: api.AuditEvent{
		Seq: 7, Time: time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC), Action: "device.lost",
		Actor:  api.Actor{ID: "usr_1", Name: "alice", Auth: "token"},
		Target: api.Target{Type: "device", ID: "dev_1", Name: `Yubico "5C"] \ nfc`},
		Extra:  map[string]string{"factors revoked": "2", "a=b": "c"},
	}}
	tests := []struct {
		name string
		want string
	}{
		{"the header follows RFC 5424 §6 with PRI authpriv.crit", `<82>1 2026-03-01T12:00:00.123456Z host keyfleetd 42 device.lost [keyfleet@32473 `},
		{"PARAM-VALUE escapes quote, backslash and bracket (§6.3.3)", `target_name="Yubico \"5C\"\] \\ nfc"`},
		{"extra fields get a second SD-ELEMENT with valid SD-NAMEs", `[keyfleet-extra@32473 a_b="c" factors_revoked="2"]`},
		{"MSG is the JSON event after a BOM", " \xEF\xBB\xBF{\"schema\":\"keyfleet.audit/v1\",\"seq\":7,"},
	}
	var b bytes.Buffer
	f := syslogFormatter{facility: facilities["authpriv"], host: "host", app: "keyfleetd", procID: "42"}
	if err := f.format(&b, ev, true); err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !strings.Contains(b.String(), tt.want) {
				t.Errorf("message %q\nlacks %q", b.String(), tt.want)
			}
		})
	}
	if strings.Contains(b.String(), "\n") {
		t.Error("the message holds a newline")
	}
}

func TestBackoffGrowsAndStaysWithinBounds(t *testing.T) {
	rc := RetryConfig{Initial: Duration{100 * time.Millisecond}, Max: Duration{time.Second}}
	tests := []struct {
		attempt  int
		rnd      float64
		min, max time.Duration
	}{
		{1, 0, 50 * time.Millisecond, 50 * time.Millisecond},
		{1, 0.999, 50 * time.Millisecond, 100 * time.Millisecond},
		{3, 0, 200 * time.Millisecond, 200 * time.Millisecond},
		{10, 0.999, 500 * time.Millisecond, time.Second},
		{200, 0.5, 500 * time.Millisecond, time.Second},
	}
	for _, tt := range tests {
		d := backoff(rc, tt.attempt, func() float64 { return tt.rnd })
		if d < tt.min || d > tt.max {
			t.Errorf("backoff(attempt %d, rnd %v) = %s, want %s…%s", tt.attempt, tt.rnd, d, tt.min, tt.max)
		}
	}
}

func TestGlobAgreesWithPathMatch(t *testing.T) {
	patterns := []string{"*", "factor.*", "*.fail", "*.reject*", "a*b*c", "user.disable", "*.break_glass_*", "f?ctor.*", "[fu]*.x"}
	actions := []string{"", "factor.revoke", "factor.", "factor", "user.verify.fail", "fail", "x.rejected", "abc", "aXbYc", "ab", "user.disable", "user.disabled", "a.break_glass_use", "fector.x", "u.x"}
	for _, p := range patterns {
		for _, a := range actions {
			want, _ := path.Match(p, a)
			if got := glob(p, a); got != want {
				t.Errorf("glob(%q, %q) = %v, path.Match says %v", p, a, got, want)
			}
		}
	}
}

func nowUTC() time.Time { return time.Now().UTC() }

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }
