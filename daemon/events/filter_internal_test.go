package events

import (
	"context"
	"errors"
	"testing"

	"github.com/keyfleet/keyfleet/api"
)

func TestGroupFilterFindsTheTargetUser(t *testing.T) {
	lookup := func(_ context.Context, id string) ([]string, error) {
		switch id {
		case "usr_admin":
			return []string{"admins"}, nil
		case "usr_broken":
			return nil, errors.New("store unavailable")
		}
		return nil, nil
	}
	m := matcher{f: Filter{Groups: []string{"admins"}}, groups: lookup}
	factorOf := func(uid string) Event {
		return Event{AuditEvent: api.AuditEvent{Action: "factor.suspend", Target: api.Target{Type: "factor", ID: "fac_1"},
			After: map[string]any{"user_id": uid}}}
	}
	tests := []struct {
		name    string
		ev      Event
		want    bool
		wantErr bool
	}{
		{"a user event matches on the groups it recorded", Event{AuditEvent: api.AuditEvent{Target: api.Target{Type: "user", ID: "usr_x"},
			Before: map[string]any{"groups": []any{"admins"}}}}, true, false},
		{"a factor event matches on its owner's groups", factorOf("usr_admin"), true, false},
		{"a factor of someone else does not match", factorOf("usr_other"), false, false},
		{"an event about no user matches no group", Event{AuditEvent: api.AuditEvent{Target: api.Target{Type: "token", ID: "tok_1"}}}, false, false},
		{"a failed lookup is an error, so the batch is retried", factorOf("usr_broken"), false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := m.match(context.Background(), tt.ev)
			if got != tt.want || (err != nil) != tt.wantErr {
				t.Errorf("match = %v, %v; want %v (error %v)", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

type countingReporter struct{ n int }

func (c *countingReporter) ReportDeadLetter(context.Context, DeadLetter) error { c.n++; return nil }

func TestDeadLettersOfDeadLetterEventsAreNotReported(t *testing.T) {
	rep := &countingReporter{}
	m := &Manager{o: Options{Cursors: &MemCursors{}, DeadLetters: rep, Now: nowUTC}, log: discard()}
	m.metrics = newMetrics(m)
	r := &runner{m: m, cfg: SinkConfig{Name: "hook", Type: TypeWebhook}}
	only := []Event{{AuditEvent: api.AuditEvent{Seq: 9, Action: ActionDeadLetter}}}
	mixed := append(only, Event{AuditEvent: api.AuditEvent{Seq: 10, Action: "device.lost"}})
	for _, batch := range [][]Event{only, mixed} {
		if err := r.deadLetter(context.Background(), batch, batch[0].Seq, batch[len(batch)-1].Seq, 3, errors.New("down")); err != nil {
			t.Fatal(err)
		}
	}
	stored, _ := m.o.Cursors.DeadLetters(context.Background(), "hook")
	if len(stored) != 2 || rep.n != 1 || r.deadLetters != 2 {
		t.Fatalf("stored %d, reported %d, counted %d; want 2, 1, 2", len(stored), rep.n, r.deadLetters)
	}
}
