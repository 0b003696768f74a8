package vkey

import (
	"net"
	"syscall"
)

// quickAck turns on TCP_QUICKACK, which Linux clears after every ACK, so
// it must be set again before each read.
func quickAck(conn net.Conn) {
	tc, isTCP := conn.(*net.TCPConn)
	if !isTCP {
		return
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return
	}
	_ = raw.Control(func(fd uintptr) {
		_ = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_QUICKACK, 1)
	})
}
