package postgres_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/core"
)

var t0 = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

func person(status string) core.User {
	return core.User{ID: "usr_cache", Username: "carol", Kind: api.KindPerson, Status: status, CreatedAt: t0, UpdatedAt: t0}
}

func setStatus(t *testing.T, st interface {
	Update(context.Context, func(core.Tx) error) error
}, status string) {
	t.Helper()
	err := st.Update(context.Background(), func(tx core.Tx) error {
		u, err := tx.UserByName("carol")
		if err != nil {
			return err
		}
		u.Status = status
		return tx.PutUser(u)
	})
	if err != nil {
		t.Fatal(err)
	}
}

var errSawActive = errors.New("carol is active")

// TestAStaleCachedRecordIsNeverTheAnswer: keyfleetd A has carol in its
// record cache; keyfleetd B disables her. A transaction on A that reads
// her and refuses because she is active, and one that writes because she
// is, both see that she is disabled: the refusal is checked against the
// database before it is answered, the write when it commits.
func TestAStaleCachedRecordIsNeverTheAnswer(t *testing.T) {
	dsn := cluster.Database(t)
	a, b := openStore(t, dsn), openStore(t, dsn)
	if err := a.Update(context.Background(), func(tx core.Tx) error { return tx.InsertUser(person(api.UserActive)) }); err != nil {
		t.Fatal(err)
	}
	setStatus(t, a, api.UserActive) // A has her in its cache now
	setStatus(t, b, api.UserDisabled)

	err := a.Update(context.Background(), func(tx core.Tx) error {
		u, err := tx.UserByName("carol")
		if err != nil {
			return err
		}
		if u.Status == api.UserActive {
			return errSawActive
		}
		return nil
	})
	if err != nil {
		t.Fatalf("an error answered from a stale cached record: %v", err)
	}
	retries := a.Retries()
	var wrote string
	err = a.Update(context.Background(), func(tx core.Tx) error {
		u, err := tx.User("usr_cache")
		if err != nil {
			return err
		}
		wrote = u.Status
		u.DisplayName = "Carol (" + u.Status + ")"
		return tx.PutUser(u)
	})
	if err != nil || wrote != api.UserDisabled {
		t.Fatalf("a write decided on carol as %q: %v", wrote, err)
	}
	// A's own write left the new version in its cache: the next
	// transaction reads it from there and commits without colliding.
	err = a.Update(context.Background(), func(tx core.Tx) error {
		u, err := tx.User("usr_cache")
		if err != nil || u.DisplayName != "Carol (disabled)" {
			return errors.New("the cache does not hold what A wrote")
		}
		u.Groups = []string{"eng"}
		return tx.PutUser(u)
	})
	if err != nil {
		t.Fatal(err)
	}
	if n := a.Retries() - retries; n > 1 {
		t.Fatalf("%d retries for two transactions after one change elsewhere, want at most 1", n)
	}
}

// TestAUsernameTakenAgainIsFoundUnderItsNewUser: A has carol's id cached
// under her name; B deletes her and makes a new carol. A finds the new
// one.
func TestAUsernameTakenAgainIsFoundUnderItsNewUser(t *testing.T) {
	dsn := cluster.Database(t)
	a, b := openStore(t, dsn), openStore(t, dsn)
	if err := a.Update(context.Background(), func(tx core.Tx) error { return tx.InsertUser(person(api.UserActive)) }); err != nil {
		t.Fatal(err)
	}
	setStatus(t, a, api.UserActive)
	err := b.Update(context.Background(), func(tx core.Tx) error {
		u, err := tx.User("usr_cache")
		if err != nil {
			return err
		}
		if err := tx.DeleteUser(u); err != nil {
			return err
		}
		n := person(api.UserActive)
		n.ID = "usr_cache2"
		return tx.InsertUser(n)
	})
	if err != nil {
		t.Fatal(err)
	}
	var id string
	err = a.Update(context.Background(), func(tx core.Tx) error {
		u, err := tx.UserByName("carol")
		id = u.ID
		return err
	})
	if err != nil || id != "usr_cache2" {
		t.Fatalf("carol on A: %q, %v; want usr_cache2", id, err)
	}
}
