package web

import (
	"container/list"
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
	// Method is how the user signed in: methodKey (a security key) or
	// methodApp (an authenticator app and the policy's second check,
	// which reaches the self-service pages only).
	Method string
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
	// Kinds are the factor kinds the pass may enrol.
	Kinds []string
}

const (
	purposeSignIn = "signin"
	purposeStepUp = "stepup"
	purposeEnrol  = "enrol"

	viaCode = "code"
	viaPass = "pass"
	viaSelf = "self" // a signed-in user adding a key

	methodKey = "key"
	methodApp = "app"
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
//
// It holds at most Max sessions (default 100,000), of which at most
// MaxAnonymous (default half of Max) are anonymous. Anyone can open an
// anonymous session by loading a page, so when the store is full the
// oldest anonymous visit that holds nothing but its CSRF token goes first,
// then the oldest sign-in or first enrolment in progress, and a signed-in
// session only when no anonymous one is left: a flood of visits cannot
// sign anybody out. Sessions are kept in three lists in the order they
// were last saved, so every operation takes constant time (amortised):
// eviction takes a list's oldest, and each Save drops a few expired
// sessions from the old ends (Load drops an expired one it finds).
type MemoryStore struct {
	Max          int
	MaxAnonymous int

	mu    sync.Mutex
	m     map[SessionKey]*list.Element // of *stored
	kinds [kindCount]list.List         // by kind, most recently saved first
}

// kind is what a session holds, in the order sessions are evicted.
type kind int

const (
	visit    kind = iota // anonymous, nothing but a CSRF token (and a flash)
	engaged              // anonymous with a ceremony in progress or a redeemed pass
	signedIn             // a signed-in user
	kindCount
)

func kindOf(s Session) kind {
	switch {
	case s.SignedIn():
		return signedIn
	case s.Pending != nil || s.Pass != nil:
		return engaged
	}
	return visit
}

// stored is one session in a list.
type stored struct {
	key  SessionKey
	kind kind
	s    Session
}

// expiredPerSave bounds how many expired sessions one Save drops from the
// old end of each list; more than it adds, so none accumulate.
const expiredPerSave = 4

var _ SessionStore = (*MemoryStore)(nil)

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore { return &MemoryStore{m: map[SessionKey]*list.Element{}} }

// Load returns the session filed under key, unless it has expired.
func (m *MemoryStore) Load(key SessionKey, now time.Time) (Session, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	el, ok := m.m[key]
	if !ok {
		return Session{}, false
	}
	st := el.Value.(*stored)
	if !now.Before(st.s.Expires) {
		m.remove(el)
		return Session{}, false
	}
	return st.s, true
}

// Save files s under key, as the most recently used of its kind, making
// room by evicting when the store is full.
func (m *MemoryStore) Save(key SessionKey, s Session) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.m == nil {
		m.m = map[SessionKey]*list.Element{}
	}
	m.dropExpired(s.LastSeen)
	k := kindOf(s)
	if el, ok := m.m[key]; ok {
		st := el.Value.(*stored)
		if st.kind == k {
			st.s = s
			m.kinds[k].MoveToFront(el)
			return nil
		}
		m.remove(el) // it changed kind: file it anew
	}
	m.makeRoom(k)
	m.m[key] = m.kinds[k].PushFront(&stored{key: key, kind: k, s: s})
	return nil
}

// makeRoom evicts until a session of kind k fits: the oldest anonymous
// visit first, then the oldest anonymous session in progress, and a
// signed-in one only when no anonymous one is left.
func (m *MemoryStore) makeRoom(k kind) {
	all, anonymous := m.limits()
	for k != signedIn && m.kinds[visit].Len()+m.kinds[engaged].Len() >= anonymous {
		m.evictOldest(visit, engaged)
	}
	for len(m.m) >= all {
		m.evictOldest(visit, engaged, signedIn)
	}
}

func (m *MemoryStore) limits() (all, anonymous int) {
	all = m.Max
	if all <= 0 {
		all = 100_000
	}
	anonymous = m.MaxAnonymous
	if anonymous <= 0 || anonymous > all {
		anonymous = max(all/2, 1)
	}
	return all, anonymous
}

// evictOldest removes the oldest session of the first of kinds that has one.
func (m *MemoryStore) evictOldest(kinds ...kind) {
	for _, k := range kinds {
		if el := m.kinds[k].Back(); el != nil {
			m.remove(el)
			return
		}
	}
}

// dropExpired removes a few sessions expired at now from the old end of
// each list.
func (m *MemoryStore) dropExpired(now time.Time) {
	for k := range m.kinds {
		for range expiredPerSave {
			el := m.kinds[k].Back()
			if el == nil || now.Before(el.Value.(*stored).s.Expires) {
				break
			}
			m.remove(el)
		}
	}
}

func (m *MemoryStore) remove(el *list.Element) {
	st := el.Value.(*stored)
	delete(m.m, st.key)
	m.kinds[st.kind].Remove(el)
}

// Delete forgets a session.
func (m *MemoryStore) Delete(key SessionKey) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if el, ok := m.m[key]; ok {
		m.remove(el)
	}
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
