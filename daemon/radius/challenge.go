package radius

import (
	"context"
	"crypto/subtle"
	"io"
	"sync"
	"time"

	"github.com/keyfleet/keyfleet/daemon/core"
)

// OutOfBand is a factor kind answered away from the NAS: a push the user
// approves on their phone. When the user signs in with such a factor, the
// listener calls Start, answers Access-Challenge ("approve on your phone,
// then press Enter"), and calls Poll each time the NAS sends the State
// back, until the answer is in or the challenge expires. A verification it
// completes goes through core, which audits it. Options.OutOfBand maps
// kinds to implementations; the push factor provides one.
type OutOfBand interface {
	// Start prompts the user on factor f (sends the push) and returns a
	// ticket for Poll.
	Start(ctx context.Context, p core.Principal, user string, f core.LoginFactor) (ticket string, err error)
	// Poll reports whether the user answered the prompt of ticket.
	Poll(ctx context.Context, p core.Principal, ticket string) (Answer, error)
}

// Answer is what Poll found.
type Answer int

// Answers.
const (
	Pending  Answer = iota // not answered yet: challenge again
	Approved               // the user approved: accept
	Denied                 // the user denied, or it expired: reject
)

// stage is what a challenge waits for.
type stage int

const (
	stagePick stage = iota // the number of a factor from a list
	stageCode              // a code for one factor
	stageWait              // an out-of-band answer for one factor
)

// challenge is an Access-Challenge waiting for its answer. It stays in
// keyfleetd; the State attribute carries only its random handle, so the
// NAS must send the answer back to the keyfleetd that asked.
type challenge struct {
	client  string
	user    string // normalName
	stage   stage
	factors []core.LoginFactor // stagePick: the choices; else the one
	ticket  string             // stageWait: the out-of-band ticket
	firstOK bool               // the first factor was checked
	expires time.Time
}

// challenges holds open challenges by handle, single use.
type challenges struct {
	mu   sync.Mutex
	ttl  time.Duration
	rand io.Reader
	m    map[[stateLen]byte]challenge
}

const (
	stateLen      = 16
	maxChallenges = 100_000
)

func newChallenges(ttl time.Duration, rand io.Reader) *challenges {
	return &challenges{ttl: ttl, rand: rand, m: map[[stateLen]byte]challenge{}}
}

// put keeps ch and returns the State that names it.
func (c *challenges) put(ch challenge, now time.Time) ([]byte, error) {
	var h [stateLen]byte
	if _, err := io.ReadFull(c.rand, h[:]); err != nil {
		return nil, err
	}
	if ch.expires.IsZero() { // an out-of-band wait keeps its first expiry
		ch.expires = now.Add(c.ttl)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= maxChallenges {
		c.sweep(now)
		if len(c.m) >= maxChallenges {
			clear(c.m) // a flood: the open challenges must start again
		}
	}
	c.m[h] = ch
	return h[:], nil
}

// take removes and returns the challenge a State names, if it is open and
// was asked of the same client about the same user.
func (c *challenges) take(state []byte, client, user string, now time.Time) (challenge, bool) {
	var h [stateLen]byte
	if len(state) != stateLen {
		return challenge{}, false
	}
	copy(h[:], state)
	c.mu.Lock()
	defer c.mu.Unlock()
	ch, ok := c.m[h]
	if !ok {
		return challenge{}, false
	}
	delete(c.m, h)
	same := subtle.ConstantTimeCompare([]byte(ch.client), []byte(client)) == 1 && ch.user == normalName(user)
	return ch, same && now.Before(ch.expires)
}

func (c *challenges) sweep(now time.Time) {
	for h, ch := range c.m {
		if !now.Before(ch.expires) {
			delete(c.m, h)
		}
	}
}

func (c *challenges) sweepNow(now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sweep(now)
}
