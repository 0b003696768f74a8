package events_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/keyfleet/keyfleet/daemon/events"
)

// benchEvents is how many audit events each benchmark iteration delivers.
const benchEvents = 5000

// BenchmarkDelivery measures events delivered per second per sink type,
// from a Badger audit log to a receiver on loopback:
//
//	go test -run '^$' -bench Delivery -benchtime 5x ./daemon/events/
func BenchmarkDelivery(b *testing.B) {
	l := newLog(b)
	l.add(b, benchEvents)
	cert := newTestCert(b)
	sinks := []struct {
		name  string
		setup func(b *testing.B) (events.SinkConfig, func() int)
	}{
		{"file", func(b *testing.B) (events.SinkConfig, func() int) {
			return events.SinkConfig{Type: "file", File: &events.FileConfig{Path: filepath.Join(b.TempDir(), "e.jsonl")}}, nil
		}},
		{"syslog-tcp", func(b *testing.B) (events.SinkConfig, func() int) {
			rcv := newSyslogReceiver(b, "tcp", nil)
			return events.SinkConfig{Type: "syslog", Syslog: &events.SyslogConfig{Network: "tcp", Address: rcv.addr}}, rcv.count
		}},
		{"webhook", func(b *testing.B) (events.SinkConfig, func() int) {
			rcv := newWebhookReceiver(b, cert.server)
			return hookSink(rcv, cert, 0), func() int { s, _ := rcv.got(); return len(s) }
		}},
	}
	for _, s := range sinks {
		b.Run(s.name, func(b *testing.B) {
			sc, received := s.setup(b)
			sc.BatchSize = events.DefaultBatchSize
			i := 0
			for b.Loop() {
				i++
				sc.Name = fmt.Sprintf("bench-%d", i)
				if sc.File != nil {
					sc.File = &events.FileConfig{Path: filepath.Join(b.TempDir(), sc.Name)}
				}
				deliverAll(b, l, sc, received, i)
			}
			b.ReportMetric(float64(benchEvents*i)/b.Elapsed().Seconds(), "events/s")
		})
	}
	b.Run("sse", func(b *testing.B) { benchSSE(b, l) })
}

// deliverAll runs a manager with one fresh sink until it delivered the
// whole log (and, if received is set, the receiver has it all).
func deliverAll(b *testing.B, l *testLog, sc events.SinkConfig, received func() int, iteration int) {
	m, err := events.New(events.Config{Sinks: []events.SinkConfig{sc}}, events.Options{Source: l.st, Cursors: &events.MemCursors{}})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	for m.Status()[0].Lag > 0 || received != nil && received() < benchEvents*iteration {
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
}

func benchSSE(b *testing.B, l *testLog) {
	m, err := events.New(events.Config{}, events.Options{Source: l.st, Cursors: &events.MemCursors{}})
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(m.SSEHandler())
	defer srv.Close() // after cancel (defers run last first): stopping the manager ends the streams
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go m.Run(ctx)
	n := 0
	for b.Loop() {
		n++
		c := openSSE(b, srv.URL+"/v1/events?since=0", nil)
		for got, _ := c.counts(); got < benchEvents; got, _ = c.counts() {
			time.Sleep(time.Millisecond)
		}
	}
	b.ReportMetric(float64(benchEvents*n)/b.Elapsed().Seconds(), "events/s")
}
