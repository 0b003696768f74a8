package events

import "sync"

// decodedEvents keeps the most recently decoded events by sequence number,
// shared by the sinks: they read the same records at about the same time,
// and an event never changes once it is in the chain, so each is decoded
// once rather than once per sink.
type decodedEvents struct {
	mu   sync.Mutex
	ring [decodedSize]decodedSlot
}

// decodedSize is a few batches of every sink (BatchSize defaults to 100).
const decodedSize = 4096

type decodedSlot struct {
	seq uint64 // 0: empty (sequence numbers start at 1)
	ev  Event
}

func (d *decodedEvents) get(seq uint64) (Event, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := &d.ring[seq%decodedSize]
	return s.ev, s.seq == seq
}

func (d *decodedEvents) put(seq uint64, ev Event) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.ring[seq%decodedSize] = decodedSlot{seq: seq, ev: ev}
}
