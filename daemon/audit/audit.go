// Package audit is keyfleet's append-only, hash-chained audit log.
//
// Every mutation in the daemon commits together with one audit [Event] in the
// same store transaction. Each stored [Record] holds the event's canonical
// JSON body and a hash that chains it to its predecessor:
//
//	hash(n) = SHA-256("keyfleet-audit-v1" ‖ hash(n-1) ‖ uint64be(n) ‖ body(n))
//
// with hash(0) = 32 zero bytes. Editing, deleting, inserting or reordering any
// record breaks the chain at that record, which [Verify] reports. The chain
// proves the log was not quietly edited by someone without the store keys;
// streaming events to an outside system (see docs/events.md) is what protects
// against someone who has them.
//
// The store computes the chain inside its transaction with [Chain.Next]; this
// package does no I/O.
package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/keyfleet/keyfleet/api"
)

// HashSize is the size of a chain hash.
const HashSize = sha256.Size

const domain = "keyfleet-audit-v1"

// Event is what a mutation records. The caller fills everything but Seq,
// which the chain assigns.
type Event struct {
	Seq       uint64            `json:"seq"`
	Time      time.Time         `json:"time"`
	Actor     api.Actor         `json:"actor"`
	Approver  *api.Actor        `json:"approver,omitempty"`
	Action    string            `json:"action"`
	Target    api.Target        `json:"target"`
	Before    map[string]any    `json:"before,omitempty"`
	After     map[string]any    `json:"after,omitempty"`
	Reason    string            `json:"reason,omitempty"`
	RequestID string            `json:"request_id,omitempty"`
	Source    string            `json:"source,omitempty"`
	Extra     map[string]string `json:"extra,omitempty"`
}

// Record is one stored link of the chain: the event's canonical body and the
// hashes that bind it to its place.
type Record struct {
	Seq  uint64
	Prev [HashSize]byte
	Hash [HashSize]byte
	Body []byte
}

// Head is the last link of a chain. The zero Head is an empty chain.
type Head struct {
	Seq  uint64
	Hash [HashSize]byte
}

// Chain appends records to a chain that ends at Head.
type Chain struct{ Head Head }

// Next seals ev as the record after c.Head, assigns ev.Seq, and advances
// c.Head. It fails only if ev cannot be encoded.
func (c *Chain) Next(ev *Event) (Record, error) {
	ev.Seq = c.Head.Seq + 1
	ev.Time = ev.Time.UTC()
	body, err := marshal(ev)
	if err != nil {
		return Record{}, fmt.Errorf("encoding audit event: %w", err)
	}
	r := Record{Seq: ev.Seq, Prev: c.Head.Hash, Body: body}
	r.Hash = linkHash(r.Prev, r.Seq, r.Body)
	c.Head = Head{Seq: r.Seq, Hash: r.Hash}
	return r, nil
}

func linkHash(prev [HashSize]byte, seq uint64, body []byte) [HashSize]byte {
	h := sha256.New()
	h.Write([]byte(domain))
	h.Write(prev[:])
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], seq)
	h.Write(n[:])
	h.Write(body)
	var out [HashSize]byte
	h.Sum(out[:0])
	return out
}

// Marshal encodes a record for the store: seq (8) ‖ prev (32) ‖ hash (32) ‖ body.
func (r Record) Marshal() []byte {
	b := make([]byte, 8+2*HashSize+len(r.Body))
	binary.BigEndian.PutUint64(b, r.Seq)
	copy(b[8:], r.Prev[:])
	copy(b[8+HashSize:], r.Hash[:])
	copy(b[8+2*HashSize:], r.Body)
	return b
}

// ErrCorrupt is returned by [Unmarshal] for bytes that are not a record.
var ErrCorrupt = errors.New("audit record is corrupt")

// Unmarshal decodes a record written by [Record.Marshal]. The body aliases b.
func Unmarshal(b []byte) (Record, error) {
	if len(b) < 8+2*HashSize {
		return Record{}, fmt.Errorf("%w: %d bytes is shorter than a record header", ErrCorrupt, len(b))
	}
	var r Record
	r.Seq = binary.BigEndian.Uint64(b)
	copy(r.Prev[:], b[8:])
	copy(r.Hash[:], b[8+HashSize:])
	r.Body = b[8+2*HashSize:]
	return r, nil
}

// Event decodes the record's body.
func (r Record) Event() (Event, error) {
	var ev Event
	if err := json.Unmarshal(r.Body, &ev); err != nil {
		return Event{}, fmt.Errorf("%w: seq %d: %v", ErrCorrupt, r.Seq, err)
	}
	return ev, nil
}

// API converts the record to its wire form. Numbers in before, after
// keep their text as hashed, so that an export can be verified offline
// (a float64 would round integers above 2^53).
func (r Record) API() (api.AuditEvent, error) {
	var ev Event
	dec := json.NewDecoder(bytes.NewReader(r.Body))
	dec.UseNumber()
	if err := dec.Decode(&ev); err != nil {
		return api.AuditEvent{}, fmt.Errorf("%w: seq %d: %v", ErrCorrupt, r.Seq, err)
	}
	return api.AuditEvent{
		Seq: r.Seq, Time: ev.Time, Actor: ev.Actor, Approver: ev.Approver,
		Action: ev.Action, Target: ev.Target, Before: ev.Before, After: ev.After,
		Reason: ev.Reason, RequestID: ev.RequestID, Source: ev.Source, Extra: ev.Extra,
		PrevHash: hex.EncodeToString(r.Prev[:]), Hash: hex.EncodeToString(r.Hash[:]),
	}, nil
}

// Verifier checks records one at a time, in order, from the start of the
// chain. The zero Verifier expects seq 1 after the zero hash.
type Verifier struct {
	head    Head
	checked uint64
}

// VerifierFrom is a Verifier that expects the record after h: it checks
// the part of a chain that follows a head known to be good (a signed
// checkpoint).
func VerifierFrom(h Head) Verifier { return Verifier{head: h} }

// BreakError says where and how a chain is broken. [Verifier.Check] returns it.
type BreakError struct {
	Seq    uint64 // the first record that does not link
	Reason string
}

func (e *BreakError) Error() string {
	return fmt.Sprintf("audit chain broken at seq %d: %s", e.Seq, e.Reason)
}

// reasonPrevMismatch is the break of a record that does not name the
// record before it as its predecessor.
const reasonPrevMismatch = "previous-hash does not match the record before it (a record was removed, inserted or reordered)"

// Check verifies that r is the next link. key is the sequence number the
// store filed the record under. It returns a *BreakError at the first bad link.
func (v *Verifier) Check(key uint64, r Record) error {
	want := v.head.Seq + 1
	switch {
	case key != want && key > want:
		return &BreakError{Seq: want, Reason: fmt.Sprintf("record %d is missing (next stored record is %d)", want, key)}
	case key != want:
		return &BreakError{Seq: want, Reason: fmt.Sprintf("record filed as %d where %d was expected", key, want)}
	case r.Seq != key:
		return &BreakError{Seq: key, Reason: fmt.Sprintf("record filed as %d says it is %d (moved)", key, r.Seq)}
	case r.Prev != v.head.Hash:
		return &BreakError{Seq: key, Reason: reasonPrevMismatch}
	}
	if got := linkHash(r.Prev, r.Seq, r.Body); got != r.Hash {
		return &BreakError{Seq: key, Reason: "hash does not match the record's content (the record was edited)"}
	}
	if !bytes.HasPrefix(r.Body, []byte("{")) {
		return &BreakError{Seq: key, Reason: "body is not an event"}
	}
	v.head = Head{Seq: r.Seq, Hash: r.Hash}
	v.checked++
	return nil
}

// Head is the last verified link.
func (v *Verifier) Head() Head { return v.head }

// Checked is how many records verified.
func (v *Verifier) Checked() uint64 { return v.checked }

// Finish checks that the verified chain ends at the stored head: records cut
// off the end of the log are caught here.
func (v *Verifier) Finish(stored Head) error {
	if stored.Seq != v.head.Seq {
		return &BreakError{Seq: v.head.Seq + 1, Reason: fmt.Sprintf("chain ends at %d but the log head says %d (records were removed from the end)", v.head.Seq, stored.Seq)}
	}
	if stored.Hash != v.head.Hash {
		return &BreakError{Seq: v.head.Seq, Reason: "the last record's hash does not match the log head"}
	}
	return nil
}

// HexHash formats a chain hash.
func HexHash(h [HashSize]byte) string { return hex.EncodeToString(h[:]) }
