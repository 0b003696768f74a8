package events

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"
)

// maxDatagram bounds a UDP or local datagram. RFC 5426 §3.2 asks receivers
// to take 2048 bytes and recommends they take more; an event that does not
// fit in 8 KiB is sent without its JSON MSG (the structured data still
// carries every field but before/after).
const maxDatagram = 8 << 10

// syslogSink sends RFC 5424 messages over UDP (RFC 5426), TCP (RFC 6587
// octet counting), TLS (RFC 5425, which frames the same way) or the local
// socket.
type syslogSink struct {
	cfg    SyslogConfig
	fmt    syslogFormatter
	tls    *tls.Config
	conn   net.Conn
	stream bool // framed byte stream, not datagrams
	nl     bool // unix stream: newline-terminated, as local daemons expect
	buf    bytes.Buffer
	msg    bytes.Buffer
}

func newSyslogSink(cfg SyslogConfig) (*syslogSink, error) {
	host := cfg.Hostname
	if host == "" {
		host, _ = os.Hostname()
	}
	s := &syslogSink{cfg: cfg, fmt: syslogFormatter{
		facility: facilities[cfg.Facility], host: host, app: cfg.AppName, procID: strconv.Itoa(os.Getpid()),
	}}
	if cfg.Network == "tls" {
		tc, err := clientTLS(cfg.TLS, cfg.CAFile, cfg.ServerName)
		if err != nil {
			return nil, err
		}
		s.tls = tc
	}
	return s, nil
}

// clientTLS returns given (if set) or a TLS 1.2+ client configuration that
// trusts the roots in caFile (the system roots if empty).
func clientTLS(given *tls.Config, caFile, serverName string) (*tls.Config, error) {
	if given != nil {
		return given.Clone(), nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: serverName}
	if caFile == "" {
		return tc, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("reading CA file: %w", err)
	}
	tc.RootCAs = x509.NewCertPool()
	if !tc.RootCAs.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("CA file %s holds no PEM certificate", caFile)
	}
	return tc, nil
}

func (s *syslogSink) dial(ctx context.Context) error {
	d := net.Dialer{Timeout: s.cfg.Timeout.Duration}
	var err error
	switch s.cfg.Network {
	case "udp":
		s.conn, err = d.DialContext(ctx, "udp", s.cfg.Address)
	case "tcp":
		s.conn, err = d.DialContext(ctx, "tcp", s.cfg.Address)
		s.stream = true
	case "tls":
		td := tls.Dialer{NetDialer: &d, Config: s.tls}
		s.conn, err = td.DialContext(ctx, "tcp", s.cfg.Address)
		s.stream = true
	default:
		// The local socket is a datagram socket on most systems; a few
		// daemons listen on a stream socket instead.
		if s.conn, err = d.DialContext(ctx, "unixgram", s.cfg.Address); err != nil {
			s.conn, err = d.DialContext(ctx, "unix", s.cfg.Address)
			s.stream, s.nl = err == nil, err == nil
		}
	}
	if err != nil {
		s.conn = nil
		return fmt.Errorf("syslog: connecting to %s %s: %w", s.cfg.Network, s.cfg.Address, err)
	}
	return nil
}

func (s *syslogSink) deliver(ctx context.Context, batch []Event) error {
	if s.conn != nil && s.stream && peerClosed(s.conn) {
		s.drop() // the receiver went away: do not write into a dead connection
	}
	if s.conn == nil {
		if err := s.dial(ctx); err != nil {
			return err
		}
	}
	if err := s.conn.SetWriteDeadline(time.Now().Add(s.cfg.Timeout.Duration)); err != nil {
		s.drop()
		return fmt.Errorf("syslog: %w", err)
	}
	if err := s.write(batch); err != nil {
		s.drop()
		return fmt.Errorf("syslog: sending to %s %s: %w", s.cfg.Network, s.cfg.Address, err)
	}
	return nil
}

// write sends a batch: as one framed write on a stream, or one datagram
// per event.
func (s *syslogSink) write(batch []Event) error {
	s.buf.Reset()
	for _, ev := range batch {
		s.msg.Reset()
		if err := s.fmt.format(&s.msg, ev, true); err != nil {
			return err
		}
		if !s.stream && s.msg.Len() > maxDatagram {
			s.msg.Reset()
			if err := s.fmt.format(&s.msg, ev, false); err != nil {
				return err
			}
		}
		if !s.stream {
			if _, err := s.conn.Write(s.msg.Bytes()); err != nil {
				return err
			}
			continue
		}
		s.frame(s.msg.Bytes())
	}
	if !s.stream {
		return nil
	}
	_, err := s.conn.Write(s.buf.Bytes())
	return err
}

// frame appends msg to the stream buffer: "LEN SP MSG" (RFC 6587 §3.4.1),
// or "MSG LF" on a local stream socket.
func (s *syslogSink) frame(msg []byte) {
	if s.nl {
		s.buf.Write(msg)
		s.buf.WriteByte('\n')
		return
	}
	s.buf.WriteString(strconv.Itoa(len(msg)))
	s.buf.WriteByte(' ')
	s.buf.Write(msg)
}

func (s *syslogSink) drop() {
	if s.conn != nil {
		s.conn.Close()
		s.conn = nil
	}
}

func (s *syslogSink) close() error {
	if s.conn == nil {
		return nil
	}
	err := s.conn.Close()
	s.conn = nil
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}
