package fido2

import (
	"crypto/rand"

	"github.com/keyfleet/keyfleet/agent"
)

// ctapReset is authenticatorReset (CTAP 2.1 §6.6): within 5 s of the key
// being plugged in, as a YubiKey allows, and after a touch, it forgets
// every credential (discoverable ones, and the master key that opens the
// others and derives their hmac-secret outputs) and the PIN. The
// attestation key, serial and sign counter stay, as on a YubiKey.
func (s *Soft) ctapReset() []byte {
	if s.o.Now().Sub(s.ctap.poweredAt) > resetWindow {
		return []byte{ctapNotAllowed}
	}
	if err := s.touch(); err != nil {
		return ctapStatus(err)
	}
	master := make([]byte, 32)
	if _, err := rand.Read(master); err != nil {
		return []byte{ctapOther}
	}
	s.st.Master, s.st.Resident = master, nil
	s.st.PINHash, s.st.Retries = nil, maxPINRetries
	s.ctap = ctapSession{poweredAt: s.ctap.poweredAt}
	if err := s.save(); err != nil {
		return []byte{ctapOther}
	}
	return []byte{ctapOK}
}

// Reset is authenticatorReset through the software key's Go interface:
// the same power-up window and touch as over CTAP.
func (s *Soft) Reset() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.removed.Load() {
		return agent.ErrKeyRemoved
	}
	return resetStatus(s.ctapReset()[0])
}

// resetStatus maps authenticatorReset's status to the agent's errors.
func resetStatus(code byte) error {
	switch code {
	case ctapOK:
		return nil
	case ctapNotAllowed:
		return agent.ErrResetWindow
	case ctapOperationDenied:
		return agent.ErrTouchDenied
	case ctapUserActionTimeout:
		return agent.ErrTouchTimeout
	}
	return &CTAPError{Code: code}
}
