//go:build !linux

package store

import (
	"math"
	"os"
)

// Elsewhere than Linux the logs are not allocated ahead and the free
// space is not measured: the store runs as Badger does alone.

func allocate(*os.File, int64) error { return nil }

func allocateBeyondEnd(*os.File, int64) error { return nil }

func freeSpace(string) (uint64, error) { return math.MaxUint64, nil }

func mapFile(path string) ([]byte, func(), error) {
	b, err := os.ReadFile(path)
	return b, func() {}, err
}

func mapFileOnce(path string) ([]byte, func(), error) { return mapFile(path) }

func lockFree(string) error { return nil }
