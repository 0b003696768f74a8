package cli_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/api/client/clienttest"
	"github.com/keyfleet/keyfleet/internal/cli"
)

// auditLog is a log that grows while the CLI polls it.
type auditLog struct {
	mu     sync.Mutex
	events []api.AuditEvent
}

func (l *auditLog) add(action string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	seq := uint64(len(l.events) + 1)
	l.events = append(l.events, api.AuditEvent{Seq: seq, Time: t0, Action: action,
		Actor: api.Actor{ID: "usr_1", Name: "root"}, Target: api.Target{Type: "user", ID: "usr_2"}})
}

func (l *auditLog) all() []api.AuditEvent {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]api.AuditEvent(nil), l.events...)
}

func TestAuditTailPrintsTheLastEventsThenNewOnesUntilInterrupted(t *testing.T) {
	e := newEnv(t)
	log := &auditLog{}
	for _, a := range []string{"user.create", "user.update", "factor.suspend"} {
		log.add(a)
	}
	e.srv.Handle("GET /v1/audit", clienttest.Audit(log.all))
	e.srv.Handle("GET /v1/audit/head", func(w http.ResponseWriter, r *http.Request) {
		all := log.all()
		clienttest.JSON(http.StatusOK, api.AuditHead{Seq: all[len(all)-1].Seq})(w, r)
	})
	ctx, cancel := context.WithCancel(context.Background())
	var out, errb syncBuffer
	done := make(chan int)
	go func() {
		done <- cli.Run(ctx, []string{"audit", "tail", "--lines", "2", "--interval", "10ms"}, nil, &out, &errb, e.getenv)
	}()
	waitFor(t, &out, "factor.suspend")
	if strings.Contains(out.String(), "user.create") {
		t.Errorf("tail printed more than --lines 2:\n%s", out.String())
	}
	log.add("factor.revoke")
	waitFor(t, &out, "factor.revoke")
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("exit %d after interrupt: %s", code, errb.String())
	}
	if n := strings.Count(out.String(), "factor.revoke"); n != 1 {
		t.Errorf("factor.revoke printed %d times", n)
	}
}

func waitFor(t *testing.T, b *syncBuffer, s string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(b.String(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q in:\n%s", s, b.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestAuditListAndExport(t *testing.T) {
	log := &auditLog{}
	for range 5 {
		log.add("user.create")
	}
	tests := []struct {
		name  string
		args  []string
		want  []string
		after string
	}{
		{"list pages by sequence and says how to go on", []string{"audit", "list", "--limit", "3"},
			[]string{"SEQ", "user.create", "root"}, ""},
		{"list starts after --after", []string{"audit", "list", "--after", "4"}, []string{"5 "}, "4"},
		{"export copies the daemon's lines", []string{"audit", "export", "--after", "2"}, []string{`{"seq":3}`}, "2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.srv.Handle("GET /v1/audit", clienttest.Audit(log.all))
			e.srv.Handle("GET /v1/audit/export", func(w http.ResponseWriter, r *http.Request) {
				_, _ = w.Write([]byte("{\"seq\":3}\n"))
			})
			r := e.run(tt.args...)
			if r.code != 0 {
				t.Fatalf("exit %d: %s", r.code, r.stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(r.stdout, w) {
					t.Errorf("stdout lacks %q:\n%s", w, r.stdout)
				}
			}
			if got := e.srv.Requests()[0].Query.Get("after"); got != tt.after {
				t.Errorf("first after = %q, want %q", got, tt.after)
			}
		})
	}
}
