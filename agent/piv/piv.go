package piv

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/go-piv/piv-go/v2/piv"

	"github.com/keyfleet/keyfleet/agent"
)

// Opener opens YubiKeys through PC/SC. The zero value is ready.
type Opener struct{}

var _ agent.PIVOpener = Opener{}

// Readers lists PC/SC readers whose name says YubiKey (or Yubico).
// vpcd and real YubiKeys both show an empty second slot ("… 00 01")
// only when a card sits in it, so every listed reader is tried by Open.
func (Opener) Readers() ([]string, error) {
	cards, err := piv.Cards()
	if err != nil {
		return nil, fmt.Errorf("listing smart card readers (is pcscd running?): %w", err)
	}
	var out []string
	for _, c := range cards {
		l := strings.ToLower(c)
		if strings.Contains(l, "yubikey") || strings.Contains(l, "yubico") {
			out = append(out, c)
		}
	}
	return out, nil
}

// Open opens the key in reader.
func (Opener) Open(reader string) (agent.PIVToken, error) {
	yk, err := piv.Open(reader)
	if err != nil {
		return nil, fmt.Errorf("opening %q: %w", reader, err)
	}
	return &Token{yk: yk, reader: reader}, nil
}

// Token is one open YubiKey.
type Token struct {
	yk     *piv.YubiKey
	reader string
}

var _ agent.PIVToken = (*Token)(nil)

// Close releases the key.
func (t *Token) Close() error { return t.yk.Close() }

// Info reads the serial, firmware and form factor.
func (t *Token) Info() (agent.DeviceInfo, error) {
	v := t.yk.Version()
	info := agent.DeviceInfo{Reader: t.reader, Firmware: fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Patch), Applets: []string{"piv"}}
	serial, err := t.yk.Serial()
	if err != nil {
		return info, fmt.Errorf("reading the serial: %w", err)
	}
	info.Serial = serial
	// The form factor comes from the management applet; YubiKey 4 has
	// none, so a failure leaves it empty rather than failing.
	if ff, err := t.yk.FormFactor(); err == nil {
		info.FormFactor, info.FormFactorCode = ff.String(), uint8(ff)
		info.Applets = append(info.Applets, "management")
	}
	return info, nil
}

// Reset blocks PIN and PUK and resets the PIV applet (piv-go does both).
func (t *Token) Reset() error { return mapErr(t.yk.Reset()) }

// IsFactoryFresh reports whether the default management key still works
// (checked by setting it to itself, which needs authenticating with it)
// and the PIN is not blocked. Trying the default PIN would cost a retry
// on a provisioned key, so the PIN itself is checked when it is changed.
func (t *Token) IsFactoryFresh() (bool, error) {
	err := t.yk.SetManagementKey(piv.DefaultManagementKey, piv.DefaultManagementKey)
	if err != nil {
		return false, nil
	}
	n, err := t.yk.Retries()
	if err != nil {
		return false, mapErr(err)
	}
	return n > 0, nil
}

// SetManagementKey replaces the default management key.
func (t *Token) SetManagementKey(newKey []byte) error {
	return mapErr(t.yk.SetManagementKey(piv.DefaultManagementKey, newKey))
}

// StoreManagementKey keeps the key in the PIN-protected data object.
func (t *Token) StoreManagementKey(key []byte) error {
	k := bytes.Clone(key)
	return mapErr(t.yk.SetMetadata(key, &piv.Metadata{ManagementKey: &k}))
}

// SetPIN changes the PIN.
func (t *Token) SetPIN(oldPIN, newPIN string) error { return mapErr(t.yk.SetPIN(oldPIN, newPIN)) }

// SetPUK changes the PUK.
func (t *Token) SetPUK(oldPUK, newPUK string) error { return mapErr(t.yk.SetPUK(oldPUK, newPUK)) }
