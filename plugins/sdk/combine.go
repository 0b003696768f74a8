package sdk

import "sync"

// maxBatch bounds how many calls (or replies) travel in one message.
const maxBatch = 64

// combiner sends the items of one side of a stream with no goroutine of
// its own: the first caller to find nobody sending sends its item, and
// with it whatever other callers added while it was sending, until none
// is left. On an idle stream an item is sent by its own caller, with no
// hand-over to another goroutine; under load the items that arrive
// during one send go out together in the next message.
type combiner[T any] struct {
	send func([]T) error // one message; called by one goroutine at a time

	mu      sync.Mutex
	pending []T
	sending bool
	err     error // the first failed send, or close's; nothing is sent after it
	idle    *sync.Cond
}

func newCombiner[T any](send func([]T) error) *combiner[T] {
	c := &combiner[T]{send: send}
	c.idle = sync.NewCond(&c.mu)
	return c
}

// add queues v and, when nobody else is sending, sends until nothing is
// queued. It returns the error that stopped the stream's sends, if any
// did, before or while v was queued.
func (c *combiner[T]) add(v T) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return c.err
	}
	c.pending = append(c.pending, v)
	if c.sending {
		return nil // the goroutine sending now takes it
	}
	c.sending = true
	defer func() { c.sending = false; c.idle.Broadcast() }()
	for len(c.pending) > 0 && c.err == nil {
		n := min(len(c.pending), maxBatch)
		batch := append([]T(nil), c.pending[:n]...)
		c.pending = append(c.pending[:0], c.pending[n:]...)
		c.mu.Unlock()
		err := c.send(batch)
		c.mu.Lock()
		if err != nil && c.err == nil {
			c.err = err
		}
	}
	return c.err
}

// close stops every later send with err and waits for the one under
// way, if any, to return.
func (c *combiner[T]) close(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err == nil {
		c.err = err
	}
	c.pending = nil
	for c.sending {
		c.idle.Wait()
	}
}
