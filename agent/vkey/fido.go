package vkey

// FIDO2 is the authenticator behind the card's FIDO applet: it takes a
// CTAP2 request (the command byte, then CBOR) and returns the response
// (a status byte, then CBOR). agent/fido2's software authenticator is
// one (fido2.Soft).
type FIDO2 interface {
	CTAP(req []byte) []byte
}

// The FIDO applet over ISO 7816 (CTAP 2.1 §11.3.3, as for NFC).
var aidFIDO = []byte{0xa0, 0x00, 0x00, 0x06, 0x47, 0x2f, 0x00, 0x01}

const (
	insNFCCTAPMsg         = 0x10 // NFCCTAP_MSG: the CTAP2 request
	insNFCCTAPGetResponse = 0x11 // NFCCTAP_GETRESPONSE: after 9100 (keep-alive)
	claProprietary        = 0x80
)

// fido is the FIDO applet. Requests are answered at once: the simulated
// touch never makes the card send keep-alives (9100), so
// NFCCTAP_GETRESPONSE has nothing to fetch.
func (c *Card) fido(cmd command) response {
	if cmd.cla != claProprietary {
		return status(swClaNotSupported)
	}
	switch cmd.ins {
	case insNFCCTAPMsg:
		if len(cmd.data) == 0 {
			return status(swWrongLength)
		}
		return ok(c.opts.FIDO2.CTAP(cmd.data))
	case insNFCCTAPGetResponse:
		return status(swConditions)
	}
	return status(swInsNotSupported)
}
