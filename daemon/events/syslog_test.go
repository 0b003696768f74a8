package events_test

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/keyfleet/keyfleet/daemon/events"
)

// syslogReceiver is a loopback syslog server: UDP, TCP with octet-counting
// framing (RFC 6587), TLS, or a unix datagram socket. It can go down and
// come back on the same address.
type syslogReceiver struct {
	t       testing.TB
	network string
	addr    string
	tls     *tls.Config

	mu    sync.Mutex
	msgs  []string
	ln    net.Listener
	pc    net.PacketConn
	conns []net.Conn
	wg    sync.WaitGroup
}

func newSyslogReceiver(t testing.TB, network string, tc *tls.Config) *syslogReceiver {
	r := &syslogReceiver{t: t, network: network, tls: tc}
	switch network {
	case "unix":
		r.addr = filepath.Join(t.TempDir(), "log.sock")
	default:
		r.addr = "127.0.0.1:0"
	}
	r.start()
	t.Cleanup(r.stop)
	return r
}

func (r *syslogReceiver) start() {
	r.t.Helper()
	var err error
	switch r.network {
	case "udp":
		r.pc, err = net.ListenPacket("udp", r.addr)
	case "unix":
		r.pc, err = net.ListenPacket("unixgram", r.addr)
	case "tls":
		r.ln, err = tls.Listen("tcp", r.addr, r.tls)
	default:
		r.ln, err = net.Listen("tcp", r.addr)
	}
	if err != nil {
		r.t.Fatalf("syslog receiver: %v", err)
	}
	if r.pc != nil {
		r.addr = r.pc.LocalAddr().String()
		r.wg.Go(r.readPackets)
		return
	}
	r.addr = r.ln.Addr().String()
	r.wg.Go(r.accept)
}

// stop closes the listener and every connection, as a crashed receiver.
func (r *syslogReceiver) stop() {
	r.mu.Lock()
	if r.ln != nil {
		r.ln.Close()
	}
	if r.pc != nil {
		r.pc.Close()
	}
	for _, c := range r.conns {
		c.Close()
	}
	r.ln, r.pc, r.conns = nil, nil, nil
	r.mu.Unlock()
	r.wg.Wait()
}

func (r *syslogReceiver) readPackets() {
	buf := make([]byte, 64<<10)
	pc := r.pc
	for {
		n, _, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		r.add(string(buf[:n]))
	}
}

func (r *syslogReceiver) accept() {
	ln := r.ln
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		r.mu.Lock()
		r.conns = append(r.conns, c)
		r.mu.Unlock()
		r.wg.Go(func() { r.readFrames(c) })
	}
}

// readFrames reads "LEN SP MSG" frames (RFC 6587 §3.4.1).
func (r *syslogReceiver) readFrames(c net.Conn) {
	br := bufio.NewReader(c)
	for {
		n, err := br.ReadString(' ')
		if err != nil {
			return
		}
		size, err := strconv.Atoi(strings.TrimSuffix(n, " "))
		if err != nil {
			r.t.Errorf("syslog receiver: bad frame length %q", n)
			return
		}
		msg := make([]byte, size)
		if _, err := io.ReadFull(br, msg); err != nil {
			return
		}
		r.add(string(msg))
	}
}

func (r *syslogReceiver) add(msg string) {
	r.mu.Lock()
	r.msgs = append(r.msgs, msg)
	r.mu.Unlock()
}

var seqParam = regexp.MustCompile(`\[keyfleet@32473 [^]]*seq="(\d+)"`)

// seqs returns the seq of every message received, in arrival order.
func (r *syslogReceiver) seqs() []uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []uint64
	for _, m := range r.msgs {
		g := seqParam.FindStringSubmatch(m)
		if g == nil {
			r.t.Errorf("syslog message without a seq: %.200q", m)
			continue
		}
		n, _ := strconv.ParseUint(g[1], 10, 64)
		out = append(out, n)
	}
	return out
}

func (r *syslogReceiver) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.msgs)
}

func (r *syslogReceiver) first() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.msgs[0]
}

// rfc5424 matches the header of RFC 5424 §6: PRI VERSION TIMESTAMP
// HOSTNAME APP-NAME PROCID MSGID.
var rfc5424 = regexp.MustCompile(`^<(\d{1,3})>1 \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z \S+ keyfleetd \d+ user\.create \[keyfleet@32473 `)

func TestSyslogDeliversEveryEventInOrder(t *testing.T) {
	cert := newTestCert(t)
	for _, network := range []string{"udp", "tcp", "tls", "unix"} {
		t.Run(network, func(t *testing.T) {
			l := newLog(t)
			rcv := newSyslogReceiver(t, network, cert.server)
			cfg := events.Config{Sinks: []events.SinkConfig{{Name: "siem", Type: "syslog", BatchSize: 10,
				Syslog: &events.SyslogConfig{Network: network, Address: rcv.addr, Hostname: "kf1", TLS: cert.client}}}}
			l.add(t, 5)
			m, _ := run(t, l, cfg, events.Options{})
			l.add(t, 20)
			waitFor(t, "every event at the receiver", func() bool { return rcv.count() >= int(l.head()) && status(m, "siem").Lag == 0 })
			checkComplete(t, rcv.seqs(), l.head())
			msg := rcv.first()
			g := rfc5424.FindStringSubmatch(msg)
			if g == nil {
				t.Fatalf("not an RFC 5424 message: %.300q", msg)
			}
			if g[1] != "85" { // authpriv (10) × 8 + notice (5)
				t.Errorf("PRI = %s, want 85", g[1])
			}
			if !strings.Contains(msg, `schema="keyfleet.audit/v1"`) || !strings.Contains(msg, "\xEF\xBB\xBF{") {
				t.Errorf("message lacks the schema or the JSON MSG: %.300q", msg)
			}
			if st := status(m, "siem"); st.Lag != 0 || st.LastError != "" {
				t.Errorf("status = %+v", st)
			}
		})
	}
}

func TestSyslogReceiverDownThenBack(t *testing.T) {
	cert := newTestCert(t)
	for _, network := range []string{"tcp", "tls"} {
		t.Run(network, func(t *testing.T) {
			l := newLog(t)
			rcv := newSyslogReceiver(t, network, cert.server)
			cfg := events.Config{Sinks: []events.SinkConfig{{Name: "siem", Type: "syslog", BatchSize: 4, Retry: fastRetry,
				Syslog: &events.SyslogConfig{Network: network, Address: rcv.addr, TLS: cert.client}}}}
			m, _ := run(t, l, cfg, events.Options{})
			l.add(t, 6)
			waitFor(t, "the first events", func() bool { return rcv.count() >= 6 })

			rcv.stop()
			l.add(t, 10)
			waitFor(t, "failed attempts while the receiver is down", func() bool { return status(m, "siem").Failures >= 2 })
			if st := status(m, "siem"); st.LastError == "" || st.LastErrorAt == nil || st.Lag == 0 {
				t.Errorf("status while down = %+v", st)
			}
			rcv.start()
			l.add(t, 4)
			waitFor(t, "every event after the receiver came back", func() bool { return status(m, "siem").Lag == 0 })
			waitFor(t, "the receiver to read them", func() bool { return rcv.count() >= int(l.head()) })
			checkComplete(t, rcv.seqs(), l.head())
		})
	}
}
