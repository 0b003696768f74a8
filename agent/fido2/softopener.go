package fido2

import "github.com/keyfleet/keyfleet/agent"

// SoftOpener offers one software authenticator as the only connected key.
type SoftOpener struct {
	Key *Soft
}

var _ agent.FIDO2Opener = SoftOpener{}

// Devices lists the software key, unless it was removed.
func (o SoftOpener) Devices() ([]string, error) {
	if o.Key == nil || o.Key.removed.Load() {
		return nil, nil
	}
	return []string{"soft:" + o.Key.o.Path}, nil
}

// Open returns the software key.
func (o SoftOpener) Open(string) (agent.FIDO2Token, error) {
	if o.Key == nil || o.Key.removed.Load() {
		return nil, agent.ErrNoFIDO2Key
	}
	return o.Key, nil
}
