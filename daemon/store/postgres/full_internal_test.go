package postgres

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/keyfleet/keyfleet/daemon/core"
)

// TestPostgreSQLsInsufficientResourcesAreStatesNotInternalErrors: a full
// disk on the database server (SQLSTATE 53100) is the store's storage-full
// error, as Badger's full disk is (503 /problems/storage-full with
// Retry-After); out of memory and too many connections are an unavailable
// store (503), each with what to do; errors that are the request's own
// stay what they are.
func TestPostgreSQLsInsufficientResourcesAreStatesNotInternalErrors(t *testing.T) {
	for _, c := range []struct {
		name        string
		code        string
		full, unav  bool
		detailNames string
	}{
		{"a full disk is storage full", "53100", true, true, "free space on the database server"},
		{"out of memory is unavailable", "53200", false, true, "out of memory"},
		{"too many connections is unavailable", "53300", false, true, "max_connections"},
		{"a configuration limit is unavailable", "53400", false, true, "PostgreSQL:"},
		{"a lost connection is unavailable", "08006", false, true, "PostgreSQL:"},
		{"a shutdown is unavailable", "57P01", false, true, "PostgreSQL:"},
		{"a unique violation is neither", "23505", false, false, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			pe := &pgconn.PgError{Code: c.code, Message: `could not extend file "base/16384/16400": No space left on device`}
			err := mapErr(fmt.Errorf("putting a user: %w", pe))
			if errors.Is(err, core.ErrStorageFull) != c.full || errors.Is(err, core.ErrUnavailable) != c.unav {
				t.Fatalf("SQLSTATE %s became %v: storage full %v, unavailable %v", c.code, err, errors.Is(err, core.ErrStorageFull), errors.Is(err, core.ErrUnavailable))
			}
			if !strings.Contains(err.Error(), c.detailNames) {
				t.Fatalf("SQLSTATE %s: %q does not say %q", c.code, err, c.detailNames)
			}
			var ra interface{ RetryAfter() time.Duration }
			if errors.As(err, &ra) != c.full {
				t.Fatalf("SQLSTATE %s: Retry-After given %v, want %v", c.code, !c.full, c.full)
			}
		})
	}
}

// TestAStoreRefusedForLackOfSpaceIsNotReadyUntilAWriteGoesThrough: after
// a refusal for lack of space the store reports storage full (Ready and
// the gauge) for 30 seconds, or until a write goes through.
func TestAStoreRefusedForLackOfSpaceIsNotReadyUntilAWriteGoesThrough(t *testing.T) {
	now := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	s := &Store{log: slog.New(slog.DiscardHandler), full: fullState{now: func() time.Time { return now }}}
	if s.Full() != nil {
		t.Fatal("a new store is full")
	}
	s.noteWrite(mapErr(&pgconn.PgError{Code: "53100", Message: "no space"}))
	if s.Full() == nil || !errors.Is(s.Full(), core.ErrStorageFull) {
		t.Fatal("a refusal for lack of space did not mark the store full")
	}
	now = now.Add(fullFor + time.Second)
	if s.Full() != nil {
		t.Fatal("the mark outlived its 30 seconds without another refusal")
	}
	s.noteWrite(mapErr(&pgconn.PgError{Code: "53100", Message: "no space"}))
	s.noteWrite(errors.New("a conflict, not space"))
	if s.Full() == nil {
		t.Fatal("an unrelated error cleared the mark")
	}
	s.noteWrite(nil)
	if s.Full() != nil {
		t.Fatal("a write that went through did not clear the mark")
	}
}
