package fido2

import "errors"

// ErrNoLibfido2: this agent was built without the libfido2 adapter.
var ErrNoLibfido2 = errors.New("this keyfleet-agent was built without libfido2 (install libfido2-dev and rebuild with cgo): USB FIDO2 keys are not available")
