package push

import (
	"encoding/json"
	"slices"
	"sync"

	"github.com/keyfleet/keyfleet/daemon/core"
)

// Event is one message on a companion's channel.
type Event struct {
	// Type is EventPush (Data is the kind's delivery: show it) or
	// EventClosed (Data names a push that no longer waits: drop it).
	Type string
	Data []byte
}

// Event types, as the SSE "event:" field names them.
const (
	EventPush   = "push"
	EventClosed = "closed"
	// EventReady follows the pushes pending when a stream opens: a
	// companion that reconnects drops the ones it had that did not come
	// again (keyfleetd restarted, or they closed meanwhile).
	EventReady = "ready"
)

// Closed is the data of an EventClosed: which push, and how it ended
// (approved, refused, reported, expired).
type Closed struct {
	VerificationID string `json:"verification_id"`
	FactorID       string `json:"factor_id"`
	Outcome        string `json:"outcome"`
}

func closedEvent(p core.Pending, outcome string) Event {
	b, _ := json.Marshal(Closed{VerificationID: p.VerificationID, FactorID: p.FactorID, Outcome: outcome})
	return Event{Type: EventClosed, Data: b}
}

// streamBuffer is how many events a slow stream may fall behind before it
// is ended (the companion reconnects and gets what is pending).
const streamBuffer = 8

// Stream is one open channel of a companion.
type Stream struct {
	events chan Event
	once   sync.Once
	ended  chan struct{}
}

// Events delivers the stream's events.
func (s *Stream) Events() <-chan Event { return s.events }

// Ended is closed when the hub ends the stream (a newer one replaced it,
// it fell behind, or keyfleetd stops).
func (s *Stream) Ended() <-chan struct{} { return s.ended }

func (s *Stream) end() { s.once.Do(func() { close(s.ended) }) }

// send queues ev, ending a stream that fell behind. The hub's lock is
// held.
func (s *Stream) send(ev Event) {
	select {
	case s.events <- ev:
	default:
		s.end()
	}
}

// Subscribe opens a stream for factorID and returns it with the
// deliveries of the pushes pending for that factor now, oldest first.
// Call the returned function when the stream closes.
func (h *Hub) Subscribe(factorID string) (*Stream, [][]byte, func()) {
	if h.board != nil {
		return h.subscribeShared(factorID)
	}
	return h.subscribe(factorID)
}

func (h *Hub) subscribe(factorID string) (*Stream, [][]byte, func()) {
	s := &Stream{events: make(chan Event, streamBuffer), ended: make(chan struct{})}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		s.end()
		return s, nil, func() {}
	}
	list := append(h.streams[factorID], s)
	if over := len(list) - h.cfg.StreamsPerDevice; over > 0 {
		for _, old := range list[:over] {
			old.end()
		}
		list = slices.Clone(list[over:])
	}
	h.streams[factorID] = list
	if h.board != nil {
		if len(list) == 1 {
			h.tagged[h.board.Tag(factorID)] = factorID
		}
		return s, nil, func() { h.unsubscribe(factorID, s) }
	}
	return s, h.pendingFor(factorID), func() { h.unsubscribe(factorID, s) }
}

func (h *Hub) unsubscribe(factorID string, s *Stream) {
	h.mu.Lock()
	defer h.mu.Unlock()
	s.end()
	list := slices.DeleteFunc(h.streams[factorID], func(x *Stream) bool { return x == s })
	if len(list) == 0 {
		delete(h.streams, factorID)
		if h.board != nil {
			delete(h.tagged, h.board.Tag(factorID))
		}
		return
	}
	h.streams[factorID] = list
}

// Pending returns the deliveries of the pushes waiting for factorID's
// answer, oldest first.
func (h *Hub) Pending(factorID string) [][]byte {
	if h.board != nil {
		items, _ := h.waitingShared(factorID)
		return items
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.pendingFor(factorID)
}

// pendingFor is Pending with h.mu held.
func (h *Hub) pendingFor(factorID string) [][]byte {
	es := h.waiting[factorID]
	out := make([][]byte, len(es))
	for i, e := range es {
		out[i] = e.p.Delivery
	}
	return out
}

// Stopping is closed when the hub closes.
func (h *Hub) Stopping() <-chan struct{} { return h.stop }
