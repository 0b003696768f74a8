package radius

import (
	"sync"
	"time"
)

// replyCache answers a NAS's retransmissions. A NAS that hears nothing
// within its timeout sends the same request again (same source, identifier
// and authenticator); checking its one-time code a second time would read
// as a replay and refuse the user. So each request is worked on once and
// its reply sent again for every copy (RFC 5080 §2.2.2), for replyTTL.
// Copies that arrive while the first is being worked on are dropped: the
// NAS will send another.
type replyCache struct {
	mu    sync.Mutex
	ttl   time.Duration
	max   int
	items map[cacheKey]*cached
	order []cacheEntry // insertion order, for expiry
}

type cacheKey struct {
	src  string
	id   byte
	auth [16]byte
}

type cached struct {
	reply []byte // nil while in flight
	at    time.Time
}

type cacheEntry struct {
	key cacheKey
	at  time.Time
}

const (
	replyTTL      = 30 * time.Second
	maxCachedReqs = 100_000
)

func newReplyCache(ttl time.Duration, max int) *replyCache {
	return &replyCache{ttl: ttl, max: max, items: map[cacheKey]*cached{}}
}

// begin reports what to do with a request: (reply, true) to send a reply
// again, (nil, true) to drop a copy of one in flight, or (nil, false) to
// work on it, after which finish or abort must be called.
func (c *replyCache) begin(k cacheKey, now time.Time) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.expire(now)
	if e, ok := c.items[k]; ok {
		return e.reply, true
	}
	if len(c.items) >= c.max {
		// Flooded: forget the oldest rather than grow without bound.
		delete(c.items, c.order[0].key)
		c.order = c.order[1:]
	}
	c.items[k] = &cached{at: now}
	c.order = append(c.order, cacheEntry{k, now})
	return nil, false
}

// finish keeps the reply for copies of the request.
func (c *replyCache) finish(k cacheKey, reply []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[k]; ok {
		e.reply = reply
	}
}

// abort forgets a request that got no reply, so a copy is worked on anew.
func (c *replyCache) abort(k cacheKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.items, k)
}

func (c *replyCache) expire(now time.Time) {
	i := 0
	for ; i < len(c.order) && now.Sub(c.order[i].at) > c.ttl; i++ {
		if e, ok := c.items[c.order[i].key]; ok && e.at.Equal(c.order[i].at) {
			delete(c.items, c.order[i].key)
		}
	}
	c.order = c.order[i:] // append moves the live part when it grows
}
