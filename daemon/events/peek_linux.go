//go:build linux

package events

import (
	"crypto/tls"
	"errors"
	"net"
	"syscall"
	"time"
)

// peerClosed reports whether the receiver closed a stream connection. A
// syslog receiver never sends, so a peek that finds end-of-file or an error
// means writes would vanish: TCP accepts the first write after the peer
// closed and only the next one fails, so without this check that first
// batch would be lost. Bytes waiting on a TLS connection are post-handshake
// messages (session tickets), which a short read consumes.
func peerClosed(c net.Conn) bool {
	raw := c
	tc, isTLS := c.(*tls.Conn)
	if isTLS {
		raw = tc.NetConn()
	}
	n, closed := peek(raw)
	if closed || n == 0 || !isTLS {
		return closed
	}
	_ = tc.SetReadDeadline(time.Now().Add(5 * time.Millisecond))
	var b [1]byte
	_, err := tc.Read(b[:])
	_ = tc.SetReadDeadline(time.Time{})
	var ne net.Error
	return err != nil && !(errors.As(err, &ne) && ne.Timeout())
}

// peek looks at the socket without blocking or consuming.
func peek(c net.Conn) (n int, closed bool) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return 0, false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return 0, false
	}
	_ = rc.Read(func(fd uintptr) bool {
		var b [1]byte
		var rerr error
		n, _, rerr = syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		switch {
		case rerr == syscall.EAGAIN || rerr == syscall.EINTR:
			n = 0
		case rerr != nil:
			closed = true
		case n == 0:
			closed = true
		}
		return true
	})
	return n, closed
}
