package vkeytest

import (
	"fmt"
	"time"

	"github.com/go-piv/piv-go/v2/piv"
)

// OpenWhenReady opens the key in reader with piv-go, polling until pcscd
// has noticed it: pcscd polls its readers every 400 ms, so a card that
// Plug just connected can still read as absent for a moment.
func OpenWhenReady(reader string) (*piv.YubiKey, error) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		yk, err := piv.Open(reader)
		if err == nil {
			return yk, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("the virtual key in %q did not appear within 10 s: %w", reader, err)
		}
		time.Sleep(20 * time.Millisecond) // polling interval
	}
}
