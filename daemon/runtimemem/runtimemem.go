// Package runtimemem holds the Go runtime settings keyfleetd runs with
// (the collector's GOGC and the memory limit derived from store.memory)
// and sets them, so that keyfleetd and the benchmarks of the packages it
// is built from (which cannot import package daemon) run alike.
package runtimemem

import "runtime/debug"

// DefaultStoreMemory is store.memory when unset: 256 MiB.
const DefaultStoreMemory = 256 << 20

// GCPercent is the collector's GOGC that keyfleetd sets when the
// environment sets none: a cycle starts when the heap has grown by four
// times what the last one left live, not once (Go's default, 100). The
// memory limit (Limit) still bounds the heap: as it nears the limit the
// collector runs as often as it must. Below it, keyfleetd's live heap is
// small next to the limit (about 45 MiB under 64 clients verifying codes
// on a small store), and at Go's default the collector ran about every
// 100 ms under that load, each cycle slowing every request in flight
// with its assists.
const GCPercent = 400

// RequestRoom is what the memory limit allows beyond store.memory:
// requests in flight, sessions, caches of the domain service.
const RequestRoom = 64 << 20

// Limit is the Go runtime memory limit (GOMEMLIMIT) keyfleetd sets for a
// store.memory of storeMemory bytes (0: DefaultStoreMemory): store.memory
// and room for requests.
func Limit(storeMemory int64) int64 {
	if storeMemory == 0 {
		storeMemory = DefaultStoreMemory
	}
	return storeMemory + RequestRoom
}

// Set sets the memory limit for storeMemory and GCPercent, each unless
// getenv says the environment sets it (GOMEMLIMIT, GOGC: the runtime read
// those at start, and they win). restore puts back what was in force.
func Set(storeMemory int64, getenv func(string) string) (restore func()) {
	setLimit, setGC := getenv("GOMEMLIMIT") == "", getenv("GOGC") == ""
	var limit int64
	var gc int
	if setLimit {
		limit = debug.SetMemoryLimit(Limit(storeMemory))
	}
	if setGC {
		gc = debug.SetGCPercent(GCPercent)
	}
	return func() {
		if setLimit {
			debug.SetMemoryLimit(limit)
		}
		if setGC {
			debug.SetGCPercent(gc)
		}
	}
}
