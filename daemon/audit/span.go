package audit

// Span checks one stretch of a chain before the record in front of it is
// known, so that several stretches can be checked at once (on several
// cores) and joined after: within the span, every record is checked as
// Verifier.Check checks it, and the first record's previous-hash is
// taken as given and kept (Prev), for Join to compare with the end of the
// span before.
type Span struct {
	v     Verifier
	prev  [HashSize]byte
	begun bool
}

// NewSpan is a span whose first record is after+1.
func NewSpan(after uint64) *Span { return &Span{v: Verifier{head: Head{Seq: after}}} }

// Check verifies that r is the span's next record; see Verifier.Check.
func (s *Span) Check(key uint64, r Record) error {
	if !s.begun && key == s.v.head.Seq+1 {
		s.prev, s.begun = r.Prev, true
		s.v.head.Hash = r.Prev
	}
	return s.v.Check(key, r)
}

// Head is the last record checked (the span's start when none was).
func (s *Span) Head() Head { return s.v.head }

// Checked is how many records of the span verified.
func (s *Span) Checked() uint64 { return s.v.checked }

// Join checks that span b begins where a ends: b's first record names a's
// last as its predecessor. It returns the *BreakError the whole chain's
// Verifier would have returned at b's first record; nil when b checked no
// record (an empty or already broken span says so itself).
func Join(a Head, b *Span) error {
	if !b.begun || b.prev == a.Hash {
		return nil
	}
	return &BreakError{Seq: a.Seq + 1, Reason: reasonPrevMismatch}
}
