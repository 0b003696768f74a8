//go:build !linux

package store

func mappedTables(string) []memRange { return nil }

func adviseRandom([]memRange, bool) {}
