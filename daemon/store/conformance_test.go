package store_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/keyfleet/keyfleet/daemon/store"
	"github.com/keyfleet/keyfleet/daemon/store/storetest"
)

// badger is the Badger store as the conformance suite opens it: a folder
// on disk, encrypted.
var badger = storetest.Backend{
	New: func(t testing.TB) string { return filepath.Join(t.TempDir(), "store") },
	Open: func(place string) (storetest.Store, error) {
		return store.Open(store.Options{Dir: place, EncryptionKey: bytes.Repeat([]byte{0x42}, 32)})
	},
}

func TestConformance(t *testing.T) { storetest.Run(t, badger) }

func TestMain(m *testing.M) {
	storetest.Child(badger)
	os.Exit(m.Run())
}
