package vkey

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// vpcd control bytes: a one-byte payload from the reader.
const (
	vpcdPowerOff = 0x00
	vpcdPowerOn  = 0x01
	vpcdReset    = 0x02
	vpcdGetATR   = 0x04
)

// Serve connects the card to the vpcd reader listening at addr
// ("127.0.0.1:35963") and answers it until ctx ends, reconnecting when the
// reader goes away (pcscd restarted). It returns nil when ctx ends.
func (c *Card) Serve(ctx context.Context, addr string) error {
	var d net.Dialer
	backoff := 10 * time.Millisecond
	for ctx.Err() == nil {
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			if !sleepCtx(ctx, backoff) {
				break
			}
			backoff = min(2*backoff, time.Second)
			continue
		}
		backoff = 10 * time.Millisecond
		err = c.ServeConn(ctx, conn)
		if err != nil && ctx.Err() == nil {
			c.opts.Logger.Info("vpcd connection closed; reconnecting", "addr", addr, "err", err)
		}
	}
	return nil
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// ServeConn answers one vpcd connection until it closes or ctx ends; it
// closes conn. A closed connection returns io.EOF (wrapped).
func (c *Card) ServeConn(ctx context.Context, conn net.Conn) error {
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	defer conn.Close()
	c.plugIn()
	var hdr [2]byte
	buf := make([]byte, 0xffff)
	for {
		// Debian's vpcd writes the length and the payload in two send()
		// calls with Nagle on: without an immediate ACK every APDU waits
		// 40+ ms for the delayed-ACK timer.
		quickAck(conn)
		if _, err := io.ReadFull(conn, hdr[:]); err != nil {
			return fmt.Errorf("reading from vpcd: %w", err)
		}
		n := int(binary.BigEndian.Uint16(hdr[:]))
		quickAck(conn)
		if _, err := io.ReadFull(conn, buf[:n]); err != nil {
			return fmt.Errorf("reading from vpcd: %w", err)
		}
		out := c.frameFromReader(buf[:n])
		if out == nil {
			continue
		}
		if err := writeFrame(conn, out); err != nil {
			return err
		}
	}
}

// frameFromReader handles one frame: a control byte or a command APDU.
// It returns the payload to send back, or nil when none is due.
func (c *Card) frameFromReader(p []byte) []byte {
	if len(p) != 1 {
		return c.Transmit(p)
	}
	switch p[0] {
	case vpcdPowerOff, vpcdPowerOn, vpcdReset:
		c.Reset()
		return nil
	case vpcdGetATR: // vpcd asks for the ATR constantly, as a presence check
		c.atrs.Add(1)
		return ATR
	}
	return nil
}

// writeFrame sends the length and the payload in one write.
func writeFrame(w io.Writer, p []byte) error {
	if len(p) > 0xffff {
		return errors.New("vkey: response longer than a vpcd frame")
	}
	out := make([]byte, 2+len(p))
	binary.BigEndian.PutUint16(out, uint16(len(p)))
	copy(out[2:], p)
	if _, err := w.Write(out); err != nil {
		return fmt.Errorf("writing to vpcd: %w", err)
	}
	return nil
}
