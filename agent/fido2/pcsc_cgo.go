//go:build cgo && linux

package fido2

// #cgo pkg-config: libpcsclite
// #include <stdlib.h>
// #include <PCSC/winscard.h>
// #include <PCSC/wintypes.h>
import "C"

import (
	"bytes"
	"fmt"
	"unsafe"
)

// pcscError is a PC/SC return code.
type pcscError struct{ rc C.LONG }

func (e pcscError) Error() string {
	return fmt.Sprintf("PC/SC error 0x%08x (is pcscd running and the key inserted?)", uint32(e.rc))
}

func pcscCheck(rc C.LONG) error {
	if rc == C.SCARD_S_SUCCESS {
		return nil
	}
	return pcscError{rc}
}

// listReaders lists the PC/SC readers (none, without an error, when
// pcscd has none).
func listReaders() ([]string, error) {
	var ctx C.SCARDCONTEXT
	if err := pcscCheck(C.SCardEstablishContext(C.SCARD_SCOPE_SYSTEM, nil, nil, &ctx)); err != nil {
		return nil, fmt.Errorf("connecting to pcscd: %w", err)
	}
	defer C.SCardReleaseContext(ctx)
	var n C.DWORD
	rc := C.SCardListReaders(ctx, nil, nil, &n)
	if rc == C.SCARD_E_NO_READERS_AVAILABLE {
		return nil, nil
	}
	if err := pcscCheck(rc); err != nil {
		return nil, fmt.Errorf("listing smart card readers: %w", err)
	}
	buf := make([]byte, n)
	rc = C.SCardListReaders(ctx, nil, (*C.char)(unsafe.Pointer(&buf[0])), &n)
	if rc == C.SCARD_E_NO_READERS_AVAILABLE {
		return nil, nil
	}
	if err := pcscCheck(rc); err != nil {
		return nil, fmt.Errorf("listing smart card readers: %w", err)
	}
	var out []string
	for _, r := range bytes.Split(buf[:n], []byte{0}) {
		if len(r) > 0 {
			out = append(out, string(r))
		}
	}
	return out, nil
}

// pcscCard is a shared connection to one card (the PIV applet may be in
// use by another client between our transactions).
type pcscCard struct {
	ctx C.SCARDCONTEXT
	h   C.SCARDHANDLE
}

func connect(reader string) (card, error) {
	c := &pcscCard{}
	if err := pcscCheck(C.SCardEstablishContext(C.SCARD_SCOPE_SYSTEM, nil, nil, &c.ctx)); err != nil {
		return nil, fmt.Errorf("connecting to pcscd: %w", err)
	}
	name := C.CString(reader)
	defer C.free(unsafe.Pointer(name))
	var proto C.DWORD
	rc := C.SCardConnect(c.ctx, name, C.SCARD_SHARE_SHARED, C.SCARD_PROTOCOL_T1, &c.h, &proto)
	if err := pcscCheck(rc); err != nil {
		C.SCardReleaseContext(c.ctx)
		return nil, fmt.Errorf("connecting to the key in %q: %w", reader, err)
	}
	return c, nil
}

func (c *pcscCard) transmit(apdu []byte) ([]byte, error) {
	resp := make([]byte, 65538) // the longest extended response and its status word
	n := C.DWORD(len(resp))
	rc := C.SCardTransmit(c.h, C.SCARD_PCI_T1, (*C.BYTE)(unsafe.Pointer(&apdu[0])), C.DWORD(len(apdu)), nil,
		(*C.BYTE)(unsafe.Pointer(&resp[0])), &n)
	if err := pcscCheck(rc); err != nil {
		return nil, fmt.Errorf("talking to the key: %w", err)
	}
	return resp[:n], nil
}

// close leaves the card as it is: a reset would end the PIV session of
// another client.
func (c *pcscCard) close() error {
	err := pcscCheck(C.SCardDisconnect(c.h, C.SCARD_LEAVE_CARD))
	C.SCardReleaseContext(c.ctx)
	return err
}
