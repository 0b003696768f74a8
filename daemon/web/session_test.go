package web

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC)

func anonymous(at time.Time) Session {
	return Session{CSRF: "c", Created: at, LastSeen: at, Expires: at.Add(30 * time.Minute)}
}

func signedInAt(at time.Time, user string) Session {
	s := anonymous(at)
	s.UserID, s.Username = user, user
	return s
}

func inProgress(at time.Time) Session {
	s := anonymous(at)
	s.Pending = &Pending{Purpose: purposeSignIn, Expires: at.Add(5 * time.Minute)}
	return s
}

func TestAFloodOfAnonymousVisitsSignsNobodyOut(t *testing.T) {
	m := &MemoryStore{Max: 10, MaxAnonymous: 5}
	for i := range 3 {
		m.Save(keyOf(fmt.Sprint("user", i)), signedInAt(t0, fmt.Sprint("usr_", i)))
	}
	m.Save(keyOf("signing-in"), inProgress(t0))
	for i := range 1000 {
		m.Save(keyOf(fmt.Sprint("flood", i)), anonymous(t0.Add(time.Duration(i)*time.Millisecond)))
	}
	if n := m.Len(); n != 3+5 {
		t.Fatalf("the store holds %d sessions, want the 3 signed in and 5 anonymous", n)
	}
	for _, k := range []string{"user0", "user1", "user2", "signing-in", "flood999", "flood996"} {
		if _, ok := m.Load(keyOf(k), t0); !ok {
			t.Errorf("session %s was evicted by the flood", k)
		}
	}
	if _, ok := m.Load(keyOf("flood0"), t0); ok {
		t.Error("the oldest anonymous visit was kept")
	}
}

func TestTheOldestSessionsGoWhenTheStoreIsFull(t *testing.T) {
	t.Run("sign-ins in progress go before signed-in users", func(t *testing.T) {
		m := &MemoryStore{Max: 4, MaxAnonymous: 2}
		m.Save(keyOf("old user"), signedInAt(t0, "a"))
		m.Save(keyOf("pending 1"), inProgress(t0))
		m.Save(keyOf("pending 2"), inProgress(t0))
		m.Save(keyOf("pending 3"), inProgress(t0)) // the anonymous cap: pending 1 goes
		if _, ok := m.Load(keyOf("pending 1"), t0); ok || m.Len() != 3 {
			t.Fatalf("after a third sign-in in progress: %d held, pending 1 kept: %v", m.Len(), ok)
		}
	})
	t.Run("signed-in users go oldest first when no anonymous one is left", func(t *testing.T) {
		m := &MemoryStore{Max: 3}
		for i := range 5 {
			m.Save(keyOf(fmt.Sprint("user", i)), signedInAt(t0, fmt.Sprint(i)))
		}
		for i, want := range []bool{false, false, true, true, true} {
			if _, ok := m.Load(keyOf(fmt.Sprint("user", i)), t0); ok != want {
				t.Errorf("user%d held = %v, want %v", i, ok, want)
			}
		}
	})
	t.Run("saving again makes a session the newest", func(t *testing.T) {
		m := &MemoryStore{Max: 4, MaxAnonymous: 2}
		m.Save(keyOf("a"), anonymous(t0))
		m.Save(keyOf("b"), anonymous(t0))
		m.Save(keyOf("a"), anonymous(t0.Add(time.Second)))
		m.Save(keyOf("c"), anonymous(t0.Add(time.Second)))
		if _, ok := m.Load(keyOf("a"), t0); !ok {
			t.Fatal("the visitor who came back was evicted before the one who did not")
		}
	})
}

func TestExpiredSessionsAreNeitherLoadedNorKept(t *testing.T) {
	m := NewMemoryStore()
	for i := range 100 {
		m.Save(keyOf(fmt.Sprint("old", i)), anonymous(t0))
	}
	if _, ok := m.Load(keyOf("old0"), t0.Add(31*time.Minute)); ok {
		t.Fatal("an expired session loaded")
	}
	later := t0.Add(time.Hour)
	for i := range 30 {
		m.Save(keyOf(fmt.Sprint("new", i)), anonymous(later))
	}
	if n := m.Len(); n != 30 {
		t.Fatalf("%d sessions held an hour later, want only the 30 new ones", n)
	}
}

func TestASessionThatChangesKindIsFiledAnew(t *testing.T) {
	m := &MemoryStore{Max: 10, MaxAnonymous: 1}
	k := keyOf("browser")
	m.Save(k, anonymous(t0))
	m.Save(k, inProgress(t0))
	m.Save(k, signedInAt(t0, "usr_1"))
	m.Save(keyOf("another"), anonymous(t0)) // fills the anonymous cap again
	if s, ok := m.Load(k, t0); !ok || !s.SignedIn() || m.Len() != 2 {
		t.Fatalf("loaded %+v %v with %d held", s, ok, m.Len())
	}
	m.Delete(k)
	if _, ok := m.Load(k, t0); ok || m.Len() != 1 {
		t.Fatal("a deleted session is still held")
	}
}

func TestTheStoreIsSafeForConcurrentPages(t *testing.T) {
	m := &MemoryStore{Max: 200, MaxAnonymous: 100}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 2000 {
				k := keyOf(fmt.Sprint(g, "/", i%300))
				switch i % 4 {
				case 0:
					m.Save(k, signedInAt(t0, "u"))
				case 1:
					m.Save(k, anonymous(t0))
				case 2:
					m.Load(k, t0)
				case 3:
					m.Delete(k)
				}
			}
		})
	}
	wg.Wait()
	if n := m.Len(); n > 200 {
		t.Fatalf("%d sessions held, cap 200", n)
	}
}
