package vkey

import (
	"crypto/sha256"
	"testing"
)

// TestVerifiedPINEndsWithTheSession: a YubiKey forgets a verified PIN
// (PIN policy "once") when the PIV applet is selected again, when another
// applet is selected, and when the card is reset or powered off.
func TestVerifiedPINEndsWithTheSession(t *testing.T) {
	tests := []struct {
		name    string
		endSess func(tc *testCard)
	}{
		{"selecting the PIV applet again", func(tc *testCard) { tc.mustOK(0xa4, 0x04, 0x00, aidPIV[:5]) }},
		{"selecting the management applet and then PIV", func(tc *testCard) {
			tc.mustOK(0xa4, 0x04, 0x00, aidMgmt)
			tc.mustOK(0xa4, 0x04, 0x00, aidPIV)
		}},
		{"a reset from the reader", func(tc *testCard) { tc.control(vpcdReset) }},
		{"power off and on", func(tc *testCard) { tc.control(vpcdPowerOff); tc.control(vpcdPowerOn) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tc := newTestCard(t, Options{})
			tc.mustAuthDefault()
			tc.generate(0x9a, algECP256, pinOnce, touchNever)
			req := signRequest()
			if sw := tc.verifyPIN(DefaultPIN); sw != swOK {
				t.Fatalf("verify %04x", sw)
			}
			tc.mustOK(0x87, algECP256, 0x9a, req)
			tc.mustOK(0x87, algECP256, 0x9a, req) // once: the PIN holds for the session
			tt.endSess(tc)
			tc.wantSW(swSecurityStatus, 0x87, algECP256, 0x9a, req)
			tc.wantSW(retriesSW(3), 0x20, 0x00, 0x80, nil) // "not verified", not an error
			tc.verifyPIN(DefaultPIN)
			tc.mustOK(0x87, algECP256, 0x9a, req)
		})
	}
}

// TestManagementKeyAuthenticationEndsWithTheSession: selecting an applet
// forgets the management key authentication too.
func TestManagementKeyAuthenticationEndsWithTheSession(t *testing.T) {
	tc := newTestCard(t, Options{})
	tc.mustAuthDefault()
	tc.mustOK(0xa4, 0x04, 0x00, aidPIV[:5])
	tc.wantSW(swSecurityStatus, 0x47, 0, 0x9a, genTemplate(algECP256, pinOnce, touchNever))
}

func signRequest() []byte {
	digest := sha256.Sum256([]byte("session"))
	return tlv(0x7c, concat([]byte{0x82, 0x00}, tlv(0x81, digest[:])))
}

// control sends a vpcd control byte, as the reader does.
func (tc *testCard) control(b byte) {
	tc.t.Helper()
	if out := tc.c.frameFromReader([]byte{b}); out != nil {
		tc.t.Fatalf("control %02x answered %x", b, out)
	}
	if b != vpcdPowerOff {
		tc.mustOK(0xa4, 0x04, 0x00, aidPIV[:5])
	}
}
