package vkey

import (
	"errors"
	"fmt"
)

// Errors returned by this package. Callers branch with errors.Is.
var (
	// ErrBadState: a state or CA file is corrupt or of another version.
	ErrBadState = errors.New("vkey: invalid state")
	// ErrBadConfig: an Options value is unusable.
	ErrBadConfig = errors.New("vkey: invalid configuration")
)

// StatusError is a card status word other than 9000, for callers (tests,
// tools) that drive a Card directly and want to branch on the status.
type StatusError struct {
	SW uint16
}

func (e *StatusError) Error() string { return fmt.Sprintf("vkey: card status %04x", e.SW) }
