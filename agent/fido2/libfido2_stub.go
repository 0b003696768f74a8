//go:build !cgo || nolibfido2

package fido2

import "github.com/keyfleet/keyfleet/agent"

// Opener stands in for the go-libfido2 adapter in a build without it
// (-tags nolibfido2, or CGO_ENABLED=0): it finds no key and says why.
type Opener struct{}

var _ agent.FIDO2Opener = Opener{}

// Devices reports ErrNoLibfido2.
func (Opener) Devices() ([]string, error) { return nil, ErrNoLibfido2 }

// Open reports ErrNoLibfido2.
func (Opener) Open(string) (agent.FIDO2Token, error) { return nil, ErrNoLibfido2 }
