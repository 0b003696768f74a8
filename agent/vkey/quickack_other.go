//go:build !linux

package vkey

import "net"

// quickAck is Linux-only; elsewhere delayed ACKs stay as they are.
func quickAck(net.Conn) {}
