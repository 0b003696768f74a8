package main

import (
	"fmt"

	"github.com/spf13/pflag"

	"github.com/keyfleet/keyfleet/agent"
	agentfido2 "github.com/keyfleet/keyfleet/agent/fido2"
)

// fido2Opener finds FIDO2 keys on USB HID (libfido2) and, when there are
// none, through PC/SC (the FIDO applet over CCID or NFC; the virtual key).
var fido2Opener agent.FIDO2Opener = agentfido2.HIDThenPCSC{HID: agentfido2.Opener{}, PCSC: agentfido2.PCSCOpener{}}

// keyFlags choose the keys to use.
type keyFlags struct {
	reader, fido2Device, softFIDO2, origin string
}

func (k *keyFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&k.reader, "reader", "", "PC/SC reader of the PIV key (default: the only YubiKey)")
	fs.StringVar(&k.fido2Device, "fido2-device", "", "FIDO2 key's HID path (default: the only FIDO2 key)")
	fs.StringVar(&k.softFIDO2, "soft-fido2", "", "use the software FIDO2 authenticator whose state is in this file (tests and demos)")
	fs.StringVar(&k.origin, "origin", "", "origin FIDO2 assertions claim (default: the one keyfleetd's challenge names, else https://RP-ID)")
}

// openFIDO2 opens the software key at --soft-fido2, the key at
// --fido2-device, or the only FIDO2 key connected.
func openFIDO2(k keyFlags) (agent.FIDO2Token, error) {
	if k.softFIDO2 != "" {
		return agentfido2.NewSoft(agentfido2.SoftOptions{Path: k.softFIDO2})
	}
	if k.fido2Device != "" {
		return fido2Opener.Open(k.fido2Device)
	}
	paths, err := fido2Opener.Devices()
	if err != nil {
		return nil, err
	}
	switch len(paths) {
	case 0:
		return nil, agent.ErrNoFIDO2Key
	case 1:
		return fido2Opener.Open(paths[0])
	}
	return nil, fmt.Errorf("%d FIDO2 keys are connected: pick one with --fido2-device", len(paths))
}

// optionalKeys opens whatever keys are connected, for verify and activate.
func optionalKeys(k keyFlags, wantPIV, wantFIDO2 bool) (agent.Keys, func(), error) {
	keys := agent.Keys{Origin: k.origin}
	if wantPIV {
		if t, err := openOne(k.reader); err == nil {
			keys.PIV = t
		}
	}
	if wantFIDO2 {
		if t, err := openFIDO2(k); err == nil {
			keys.FIDO2 = t
		}
	}
	closeAll := func() {
		if keys.PIV != nil {
			keys.PIV.Close()
		}
		if keys.FIDO2 != nil {
			keys.FIDO2.Close()
		}
	}
	if keys.PIV == nil && keys.FIDO2 == nil {
		return keys, closeAll, agent.ErrNoKey
	}
	return keys, closeAll, nil
}
