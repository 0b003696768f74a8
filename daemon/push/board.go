package push

import (
	"context"
	"errors"
	"time"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/core"
)

// Board keeps pending pushes where every keyfleetd on one database sees
// them (*cluster.Pushes, PostgreSQL), with notices that tell each
// keyfleetd when a push is filed or decided. With a Board the hub keeps
// no push in memory: only its companions' open streams and the
// applications waiting on it.
type Board interface {
	// ID is the opaque id of the push (verificationID, factorID): what
	// notices carry.
	ID(verificationID, factorID string) string
	// Tag is the opaque tag of a factor that filed notices carry, so a
	// keyfleetd looks up only the pushes for companions connected to it.
	Tag(factorID string) string
	// Put files p, pending until p.Deadline, and sends a filed notice.
	Put(ctx context.Context, p core.Pending) error
	// Waiting lists the pushes pending for factorID at now, oldest first.
	Waiting(ctx context.Context, factorID string, now time.Time) ([]core.Pending, error)
	// Claim takes a pending push for answering, once, before its
	// deadline. Errors: ErrNotPending.
	Claim(ctx context.Context, verificationID, factorID string, now time.Time) (core.Pending, error)
	// Release puts a claimed push back (its answer could not be
	// recorded now, the companion may try again).
	Release(ctx context.Context, verificationID, factorID string) error
	// Decide records a claimed push's outcome, kept until until, and
	// sends a decided notice.
	Decide(ctx context.Context, verificationID, factorID string, o Outcome, until time.Time) error
	// Result takes a decided push's outcome, once; done is false while it
	// is pending. Errors: ErrNotPending when nothing is filed under the
	// ids, or its outcome was taken.
	Result(ctx context.Context, verificationID, factorID string) (o Outcome, done bool, err error)
	// Due claims up to n pushes to close: pending past their deadline, or
	// claimed before stale and never decided (a keyfleetd stopped while
	// recording an answer). It deletes outcomes kept past their time.
	Due(ctx context.Context, now, stale time.Time, n int) ([]core.Pending, error)
	// FirstSeen records a companion's signed request (its device and
	// signing time) until until, and reports whether no keyfleetd saw it
	// before.
	FirstSeen(ctx context.Context, factorID string, signedAt int64, until time.Time) (bool, error)
	// Count is how many pushes are pending at now, on every keyfleetd.
	Count(ctx context.Context, now time.Time) (int, error)
	// Lookup returns the push a notice names, and its outcome once
	// decided. Errors: ErrNotPending when it is gone.
	Lookup(ctx context.Context, id string) (p core.Pending, o *Outcome, err error)
	// Listen calls fn with each notice until ctx ends, reconnecting
	// after a lost connection; ready is called each time it (re)starts
	// listening (notices may have been missed before).
	Listen(ctx context.Context, ready func(), fn func(BoardNotice))
}

// ErrNotPending: no push is waiting under those ids (answered, run out,
// or never filed), or its outcome was taken already.
var ErrNotPending = errors.New("no push is waiting under that id")

// Outcome is how a push ended, as a Board keeps it.
type Outcome struct {
	Result  api.VerifyResult `json:"result"`
	Outcome string           `json:"outcome"` // approved, refused, reported, expired
}

// BoardNotice is what a Board tells every keyfleetd: the push ID was filed,
// or (Decided) it was decided.
type BoardNotice struct {
	ID      string
	Decided bool
	// Tag is the push's factor's Tag, on filed notices ("" if unknown:
	// then every keyfleetd with a stream open looks the push up).
	Tag string
}
