package cluster_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"testing"
	"time"

	"github.com/keyfleet/keyfleet/daemon/cluster"
	"github.com/keyfleet/keyfleet/daemon/web"
)

func (n *node) sessions() *cluster.Sessions {
	return &cluster.Sessions{Pool: n.st.Pool(), Sealer: n.st}
}

func cookie(s string) web.SessionKey { return sha256.Sum256([]byte(s)) }

var t0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

func signedIn(name string) web.Session {
	return web.Session{UserID: "usr_" + name, Username: name, CSRF: "csrf-" + name + "-0123456789",
		Created: t0, LastSeen: t0, Expires: t0.Add(time.Hour), Flash: "Welcome back, " + name}
}

func TestABrowserSignedInThroughOneKeyfleetdIsSignedInOnAnother(t *testing.T) {
	dsn, key := newDatabase(t)
	a, b := open(t, dsn, key).sessions(), open(t, dsn, key).sessions()
	k := cookie("alice's cookie")
	if err := a.Save(k, signedIn("alice")); err != nil {
		t.Fatal(err)
	}
	got, ok := b.Load(k, t0.Add(time.Minute))
	if !ok || got.Username != "alice" || got.CSRF != "csrf-alice-0123456789" || !got.Expires.Equal(t0.Add(time.Hour)) {
		t.Fatalf("the other keyfleetd loaded %+v, %v", got, ok)
	}
	// Saving again replaces it (the idle deadline moves on).
	later := signedIn("alice")
	later.Expires = t0.Add(2 * time.Hour)
	if err := b.Save(k, later); err != nil {
		t.Fatal(err)
	}
	if got, ok := a.Load(k, t0.Add(90*time.Minute)); !ok || !got.Expires.Equal(later.Expires) {
		t.Fatalf("after the second save: %+v, %v", got, ok)
	}
	// Signing out on one signs out on all.
	a.Delete(k)
	if _, ok := b.Load(k, t0.Add(91*time.Minute)); ok {
		t.Fatal("a deleted session still loads on the other keyfleetd")
	}
}

func TestAnExpiredSessionIsNotLoaded(t *testing.T) {
	dsn, key := newDatabase(t)
	s := open(t, dsn, key).sessions()
	k := cookie("bob's cookie")
	if err := s.Save(k, signedIn("bob")); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Load(k, t0.Add(time.Hour)); ok {
		t.Fatal("a session loaded at its expiry")
	}
	if _, ok := s.Load(cookie("a cookie nobody was given"), t0); ok {
		t.Fatal("an unknown cookie loaded a session")
	}
}

// TestADumpOfTheSessionsShowsNoCookieNameOrCSRFToken: the table holds
// the cookie's hash and the sealed session only, and a sealed session
// moved under another browser's key does not open there.
func TestADumpOfTheSessionsShowsNoCookieNameOrCSRFToken(t *testing.T) {
	dsn, key := newDatabase(t)
	n := open(t, dsn, key)
	s := n.sessions()
	ka, kb := cookie("carol's cookie"), cookie("mallory's cookie")
	s.Save(ka, signedIn("carol"))
	s.Save(kb, signedIn("mallory"))
	var dump []byte
	rows, err := n.st.Pool().Query(context.Background(), "SELECT k, rec FROM web_sessions")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var k, rec []byte
		rows.Scan(&k, &rec)
		dump = append(append(dump, k...), rec...)
	}
	rows.Close()
	for _, secret := range []string{"carol's cookie", "carol", "usr_carol", "csrf-carol", "Welcome back"} {
		if bytes.Contains(dump, []byte(secret)) {
			t.Fatalf("the sessions table shows %q", secret)
		}
	}
	// Mallory, with write access to the table, copies carol's sealed
	// session under her own cookie: it does not open under her key.
	admin(t, dsn, "UPDATE web_sessions SET rec = (SELECT rec FROM web_sessions WHERE k = $1) WHERE k = $2", ka[:], kb[:])
	if got, ok := s.Load(kb, t0); ok {
		t.Fatalf("carol's session opened under mallory's cookie: %+v", got)
	}
	if _, ok := s.Load(ka, t0); !ok {
		t.Fatal("carol's own session no longer loads")
	}
}

func TestSessionsWithoutTheDatabaseSignNobodyInAndSayWhy(t *testing.T) {
	dsn, key := newDatabase(t)
	n := open(t, dsn, key)
	s := n.sessions()
	k := cookie("dave's cookie")
	if err := s.Save(k, signedIn("dave")); err != nil {
		t.Fatal(err)
	}
	n.st.Close()
	if _, ok := s.Load(k, t0); ok {
		t.Fatal("a session loaded from a database that does not answer")
	}
	if err := s.Save(k, signedIn("dave")); err == nil {
		t.Fatal("saving a session without the database reported no error")
	}
	s.Delete(k) // logs, does not panic
}
