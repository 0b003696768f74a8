package store

import (
	"time"

	"github.com/keyfleet/keyfleet/daemon/core"
)

// The policy facts codec, exported for the PostgreSQL store
// (daemon/store/postgres), which keeps the same records in a table: both
// backends then hand bulk evaluation the same bytes and decode them the
// same way.

// Tags of the facts records a user has besides their own.
const (
	FactsFirstApplied = tagFirstApplied
	FactsFactor       = tagFactor
	FactsExemption    = tagExemption
)

// EncodeUserFacts is the facts record of u.
func EncodeUserFacts(u core.User) []byte { return encodeUserFacts(core.UserFactsOf(u)) }

// EncodeFactorFacts is the facts record of f.
func EncodeFactorFacts(f core.Factor) []byte { return encodeFactorFacts(core.FactsOf(f)) }

// EncodeFirstApplied is the facts record of a user's first-applied times.
func EncodeFirstApplied(m map[string]time.Time) []byte { return encodeFirstApplied(m) }

// EncodeExemption is the facts record of x.
func EncodeExemption(x core.Exemption) []byte { return encodeExemption(x.Reason, x.Until) }

// FactsBundle collects one user's facts records; its Facts decodes them
// (core.PolicyFactsRecord).
type FactsBundle struct{ fb factsBundle }

// NewFactsBundle starts the bundle of a user whose own record is v.
func NewFactsBundle(userID string, v []byte) *FactsBundle {
	b := &FactsBundle{fb: factsBundle{uid: userID}}
	b.fb.add(tagUser, []byte(userID), v)
	return b
}

// Add appends the user's record of tag (FactsFactor…) for id.
func (b *FactsBundle) Add(tag byte, id string, v []byte) { b.fb.add(tag, []byte(id), v) }

// AddBytes is Add for an id in bytes; neither id nor v is kept.
func (b *FactsBundle) AddBytes(tag byte, id, v []byte) { b.fb.add(tag, id, v) }

// Facts decodes the bundle.
func (b *FactsBundle) Facts() (core.PolicyFacts, error) { return b.fb.Facts() }

// UserID is the user's id.
func (b *FactsBundle) UserID() string { return b.fb.uid }
