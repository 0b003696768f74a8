package radius

import (
	"context"
	"crypto/subtle"
	"errors"
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

// Stage is what a challenge waits for.
type Stage int

// Stages.
const (
	StagePick Stage = iota // the number of a factor from a list
	StageCode              // a code for one factor
	StageWait              // an out-of-band answer for one factor
)

// Challenge is an Access-Challenge waiting for its answer. The State
// attribute the NAS gets carries only a random handle (StateLen bytes)
// that names it in a Challenges.
type Challenge struct {
	Client  string             `json:"client"`
	User    string             `json:"user"` // as normalised: trimmed, lower case
	Stage   Stage              `json:"stage"`
	Factors []core.LoginFactor `json:"factors"` // StagePick: the choices; else the one
	Ticket  string             `json:"ticket,omitempty"`
	FirstOK bool               `json:"first_ok,omitempty"` // the first factor was checked
	// Node names the listener that asked (random, new at each start):
	// an out-of-band prompt can be polled only there.
	Node    string    `json:"node"`
	Expires time.Time `json:"expires"`
}

// Answers reports whether an answer from client about user (normalised)
// at now may take the challenge: the same client, the same user, in time.
func (ch Challenge) Answers(client, user string, now time.Time) bool {
	same := subtle.ConstantTimeCompare([]byte(ch.Client), []byte(client)) == 1 && ch.User == user
	return same && now.Before(ch.Expires)
}

// ErrNoChallenge is returned by Challenges.Take when no open challenge
// answers the State: none was filed under it, it was taken already, it
// expired, or it was asked of another client or about another user.
var ErrNoChallenge = errors.New("radius: no open challenge under this State (answered already, expired, or asked of another client or user)")

// Challenges keeps open challenges between the Access-Challenge and its
// answer, filed by their State handle, each taken once. The listener
// keeps them in its memory by default (one keyfleetd);
// cluster.RadiusChallenges keeps them in PostgreSQL, so that any
// keyfleetd on the database takes the answer.
type Challenges interface {
	// Put files ch under state (StateLen random bytes) until ch.Expires.
	Put(ctx context.Context, state []byte, ch Challenge) error
	// Take removes the challenge filed under state and returns it when
	// ch.Answers(client, user, now); otherwise ErrNoChallenge (it is
	// removed all the same). Other errors: the store did not answer.
	Take(ctx context.Context, state []byte, client, user string, now time.Time) (Challenge, error)
	// Sweep forgets expired challenges.
	Sweep(ctx context.Context, now time.Time) error
}

// StateLen is the length of a State handle.
const StateLen = 16

// maxChallenges bounds the challenges kept in memory: past it, expired
// ones are forgotten, and if that is not enough (a flood), all of them.
const maxChallenges = 100_000

// memChallenges keeps open challenges in the listener's memory.
type memChallenges struct {
	mu  sync.Mutex
	now func() time.Time
	m   map[[StateLen]byte]Challenge
}

var _ Challenges = (*memChallenges)(nil)

// NewMemoryChallenges returns the Challenges a listener keeps in memory
// by default (now is its clock, nil for time.Now). Listeners in one
// process may share it.
func NewMemoryChallenges(now func() time.Time) Challenges {
	if now == nil {
		now = time.Now
	}
	return newMemChallenges(now)
}

func newMemChallenges(now func() time.Time) *memChallenges {
	return &memChallenges{now: now, m: map[[StateLen]byte]Challenge{}}
}

// Put implements Challenges.
func (c *memChallenges) Put(_ context.Context, state []byte, ch Challenge) error {
	if len(state) != StateLen {
		return errors.New("radius: a State handle is 16 bytes")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= maxChallenges {
		c.sweep(c.now())
		if len(c.m) >= maxChallenges {
			clear(c.m) // a flood: the open challenges must start again
		}
	}
	c.m[[StateLen]byte(state)] = ch
	return nil
}

// Take implements Challenges.
func (c *memChallenges) Take(_ context.Context, state []byte, client, user string, now time.Time) (Challenge, error) {
	if len(state) != StateLen {
		return Challenge{}, ErrNoChallenge
	}
	h := [StateLen]byte(state)
	c.mu.Lock()
	defer c.mu.Unlock()
	ch, ok := c.m[h]
	if !ok {
		return Challenge{}, ErrNoChallenge
	}
	delete(c.m, h)
	if !ch.Answers(client, user, now) {
		return Challenge{}, ErrNoChallenge
	}
	return ch, nil
}

// Sweep implements Challenges.
func (c *memChallenges) Sweep(_ context.Context, now time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sweep(now)
	return nil
}

func (c *memChallenges) sweep(now time.Time) {
	for h, ch := range c.m {
		if !now.Before(ch.Expires) {
			delete(c.m, h)
		}
	}
}
