package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/keyfleet/keyfleet/api/client"
	pushkind "github.com/keyfleet/keyfleet/plugins/push"
)

func delivery(id string, choices ...string) client.PushEvent {
	b, _ := json.Marshal(pushkind.Delivery{VerificationID: id, FactorID: "fac_1", User: "ann", Application: "VPN",
		Time: time.Now(), Deadline: time.Now().Add(time.Minute), Choices: choices})
	return client.PushEvent{Type: "push", Data: b}
}

// TestTheTerminalCompanionShowsOnePushAtATimeAndForgetsLostOnes walks a
// reconnect: a push shown, the stream breaks, keyfleetd comes back with
// another one only (it restarted); the first is dropped, the second asked.
func TestTheTerminalCompanionShowsOnePushAtATimeAndForgetsLostOnes(t *testing.T) {
	var out bytes.Buffer
	l := &listener{out: &out, fresh: map[string]bool{}}
	l.event(client.PushEvent{Type: "ready", Data: []byte(`{"pending":0}`)})
	l.event(delivery("ver_a", "11", "22", "33"))
	l.event(delivery("ver_b", "44", "55", "66"))
	if !strings.Contains(out.String(), "Which number does the sign-in screen show? 11 / 22 / 33") || !strings.Contains(out.String(), "Another sign-in waits") {
		t.Fatalf("printed:\n%s", out.String())
	}
	out.Reset()
	l.event(client.PushEvent{Type: eventReconnecting})
	l.event(delivery("ver_b", "44", "55", "66"))
	l.event(client.PushEvent{Type: "ready", Data: []byte(`{"pending":1}`)})
	if len(l.queue) != 1 || l.queue[0].VerificationID != "ver_b" || !strings.Contains(out.String(), "no longer waits") ||
		!strings.Contains(out.String(), "44 / 55 / 66") {
		t.Fatalf("after the reconnect: queue %v, printed:\n%s", l.queue, out.String())
	}
	out.Reset()
	l.event(client.PushEvent{Type: "closed", Data: []byte(`{"verification_id":"ver_b","outcome":"expired"}`)})
	if len(l.queue) != 0 || !strings.Contains(out.String(), "closed (expired)") {
		t.Fatalf("after closed: %v\n%s", l.queue, out.String())
	}
}

func TestTypedAnswersAreReadStrictly(t *testing.T) {
	withNumbers := pushkind.Delivery{Choices: []string{"11", "22", "33"}}
	without := pushkind.Delivery{}
	tests := []struct {
		name             string
		d                pushkind.Delivery
		line             string
		number, decision string
		ok               bool
	}{
		{"a number on offer approves with it", withNumbers, "22", "22", pushkind.Approve, true},
		{"a number not on offer is asked again", withNumbers, "44", "", "", false},
		{"a bare approve needs no number matching", withNumbers, "a", "", "", false},
		{"without number matching, a approves", without, "a", "", pushkind.Approve, true},
		{"d denies", withNumbers, "d", "", pushkind.Deny, true},
		{"r reports", withNumbers, "R", "", pushkind.Report, true},
		{"nothing is asked again", withNumbers, "", "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, d, ok := parseAnswer(tt.d, tt.line)
			if ok != tt.ok || (ok && (n != tt.number || d != tt.decision)) {
				t.Fatalf("parseAnswer(%q) = %q %q %v", tt.line, n, d, ok)
			}
		})
	}
}
