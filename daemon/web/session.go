package web

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"sync"
	"time"
)

// SessionKey identifies a session in a [SessionStore]: the SHA-256 of the
// cookie's value. The value itself is never stored, so a dump of the store
// does not let anyone take over a session.
type SessionKey [sha256.Size]byte

// keyOf hashes a cookie value.
func keyOf(cookie string) SessionKey { return sha256.Sum256([]byte(cookie)) }

// Session is what the pages remember about one browser. A session without
// a UserID is anonymous: it carries only the CSRF token and a sign-in or
// first-enrolment ceremony in progress.
type Session struct {
	UserID   string
	Username string
	// CSRF is the token every form and script request must echo.
	CSRF string
	// Created and LastSeen drive the absolute and idle timeouts; Expires
	// is the earlier of the two deadlines, so a store can drop the session
	// without knowing the timeouts.
	Created  time.Time
	LastSeen time.Time
	Expires  time.Time
	// SteppedUp is when the user last re-verified with their key; sensitive
	// actions need it to be recent.
	SteppedUp time.Time
	// Pending is a WebAuthn ceremony this browser started.
	Pending *Pending
	// Pass is a temporary access pass this browser redeemed: it may enrol
	// keys for the pass's user until it expires or is used up.
	Pass *PassGrant
	// Flash is a one-time message shown on the next page.
	Flash string
}

// Pending is a begun verification (sign-in or step-up) or enrolment.
type Pending struct {
	Purpose     string // purposeSignIn, purposeStepUp, purposeEnrol
	UserID      string
	VerifyID    string   // core verification id
	FactorIDs   []string // the factors the verification offered
	EnrolmentID string
	// Via is how a first enrolment was opened: viaCode (an enrolment
	// code) or viaPass (a temporary access pass).
	Via     string
	Expires time.Time
}

// PassGrant is what the pages keep of a redeemed temporary access pass:
// the principal core made of it, never the pass code or its token.
type PassGrant struct {
	UserID   string
	Username string
	TokenID  string
	PassID   string
	Roles    []string
	// CodeHash is the SHA-256 of the pass code, so entering the same code
	// again in this browser resumes the grant (a pass redeems once).
	CodeHash [32]byte
	// Desk is set when an enroller redeemed an attended pass: the
	// enroller stays signed in afterwards.
	Desk    bool
	Expires time.Time
}

const (
	purposeSignIn = "signin"
	purposeStepUp = "stepup"
	purposeEnrol  = "enrol"

	viaCode = "code"
	viaPass = "pass"
	viaSelf = "self" // a signed-in user adding a key
)

// SignedIn reports whether the session belongs to a user.
func (s Session) SignedIn() bool { return s.UserID != "" }

// SessionStore keeps sessions by the hash of their cookie. Implementations
// must be safe for concurrent use. Load returns false for an unknown or
// expired session.
type SessionStore interface {
	Load(key SessionKey, now time.Time) (Session, bool)
	Save(key SessionKey, s Session) error
	Delete(key SessionKey)
}

// MemoryStore is a SessionStore in this process's memory. Sessions do not
// survive a restart of keyfleetd, and each daemon has its own: behind a
// load balancer, pin browsers to one daemon or supply a shared store.
// It holds at most Max sessions (default 100,000); when full, expired
// sessions are dropped first, and then the one that expires soonest.
type MemoryStore struct {
	Max int

	mu sync.Mutex
	m  map[SessionKey]Session
}

var _ SessionStore = (*MemoryStore)(nil)

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore { return &MemoryStore{m: map[SessionKey]Session{}} }

// Load returns the session filed under key, unless it has expired.
func (m *MemoryStore) Load(key SessionKey, now time.Time) (Session, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.m[key]
	if !ok || !now.Before(s.Expires) {
		delete(m.m, key)
		return Session{}, false
	}
	return s, true
}

// Save files s under key.
func (m *MemoryStore) Save(key SessionKey, s Session) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.m == nil {
		m.m = map[SessionKey]Session{}
	}
	limit := m.Max
	if limit <= 0 {
		limit = 100_000
	}
	if _, ok := m.m[key]; !ok && len(m.m) >= limit {
		m.evict(s.LastSeen, limit)
	}
	m.m[key] = s
	return nil
}

// evict drops expired sessions, or the one closest to expiry.
func (m *MemoryStore) evict(now time.Time, limit int) {
	var soonest SessionKey
	var first time.Time
	for k, s := range m.m {
		if !now.Before(s.Expires) {
			delete(m.m, k)
			continue
		}
		if first.IsZero() || s.Expires.Before(first) {
			soonest, first = k, s.Expires
		}
	}
	if len(m.m) >= limit && !first.IsZero() {
		delete(m.m, soonest)
	}
}

// Delete forgets a session.
func (m *MemoryStore) Delete(key SessionKey) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.m, key)
}

// Len is the number of sessions held (for tests and metrics).
func (m *MemoryStore) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.m)
}

// randomToken returns 32 random bytes, base64url-encoded.
func randomToken() string {
	b := make([]byte, 32)
	rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}
