package fido2

import (
	"errors"
	"testing"
)

// TestLibfido2ListsDevices is the adapter's smoke test: it runs libfido2
// for real. On a machine without USB HID it lists no key, without error.
func TestLibfido2ListsDevices(t *testing.T) {
	paths, err := Opener{}.Devices()
	if errors.Is(err, ErrNoLibfido2) {
		t.Skip("skipping: built without libfido2 (install libfido2-dev, build with cgo and without -tags nolibfido2)")
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("libfido2 lists %d FIDO2 key(s): %v", len(paths), paths)
}
