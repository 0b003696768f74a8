//go:build !cgo || !linux

package fido2

import "errors"

var errNoPCSC = errors.New("this keyfleet-agent was built without PC/SC (cgo on Linux): FIDO2 keys are reached over USB HID only")

func listReaders() ([]string, error) { return nil, errNoPCSC }

func connect(string) (card, error) { return nil, errNoPCSC }
