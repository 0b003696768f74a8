package postgres_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/audit"
	"github.com/keyfleet/keyfleet/daemon/core"
)

// updater is a store that runs write transactions.
type updater interface {
	Update(context.Context, func(core.Tx) error) error
}

// bump adds one to user id's failure count, read from the cache when it
// holds her, with n audit events named action.0 … action.n-1.
func bump(st updater, id, action string, n int) error {
	return st.Update(context.Background(), func(tx core.Tx) error {
		u, err := tx.User(id)
		if err != nil {
			return err
		}
		u.Failures++
		if err := tx.PutUser(u); err != nil {
			return err
		}
		for i := range n {
			ev := &audit.Event{Time: time.Now(), Actor: api.Actor{ID: "system"}, Action: fmt.Sprintf("%s.%d", action, i), Target: api.Target{Type: "user", ID: id}}
			if err := tx.Audit(ev); err != nil {
				return err
			}
		}
		return nil
	})
}

// keepBumping has keyfleetd b bump user id's count, one commit at a
// time, until the function it returns is called (which waits for it);
// done is called with each bump's audit action once it is committed.
func keepBumping(t *testing.T, b updater, id string, done func(action string)) func() {
	stop := make(chan struct{})
	var other sync.WaitGroup
	other.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			name := fmt.Sprintf("b%d", i)
			if err := bump(b, id, name, 1); err != nil {
				t.Errorf("keyfleetd B: %v", err)
				return
			}
			done(name)
			time.Sleep(time.Millisecond)
		}
	})
	return func() { close(stop); other.Wait() }
}

// TestTransactionsThatShareACommitKeepTheirOwnChecks: eight writers on
// keyfleetd A each add to their own user's count, audited, many times at
// once, so that A commits them in groups; meanwhile keyfleetd B adds to
// user 0's count too, so that A's cached copy of her is stale again and
// again. A group with writer 0's stale read fails as a whole, and its
// transactions run again: no addition is lost or made twice, and the
// chain holds every acknowledged transaction's events, together, in one
// gap-free chain.
func TestTransactionsThatShareACommitKeepTheirOwnChecks(t *testing.T) {
	dsn := cluster.Database(t)
	a, b := openStore(t, dsn), openStore(t, dsn)
	const writers, rounds = 8, 25
	id := func(w int) string { return fmt.Sprintf("usr_group%d", w) }
	err := a.Update(context.Background(), func(tx core.Tx) error {
		for w := range writers {
			u := core.User{ID: id(w), Username: fmt.Sprintf("group%d", w), Kind: api.KindPerson, Status: api.UserActive, CreatedAt: t0, UpdatedAt: t0}
			if err := tx.InsertUser(u); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	acked := map[string]bool{}
	var mu sync.Mutex
	ack := func(name string) { mu.Lock(); acked[name] = true; mu.Unlock() }
	var fromB atomic.Int64
	stopB := keepBumping(t, b, id(0), func(name string) {
		fromB.Add(1)
		ack(name)
	})
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range rounds {
				name := fmt.Sprintf("a%d-%d", w, i)
				if err := bump(a, id(w), name, 2); err != nil {
					t.Errorf("writer %d: %v", w, err)
					return
				}
				ack(name)
			}
		})
	}
	wg.Wait()
	stopB()

	grouped := a.Grouped()
	t.Logf("%d of A's %d transactions shared a commit; %d ran again; B added %d", grouped, writers*rounds, a.Retries(), fromB.Load())
	if grouped == 0 {
		t.Fatal("no transactions shared a commit: the test shows nothing")
	}
	err = b.View(context.Background(), func(tx core.ReadTx) error {
		for w := range writers {
			u, err := tx.User(id(w))
			if err != nil {
				return err
			}
			want := rounds
			if w == 0 {
				want += int(fromB.Load())
			}
			if u.Failures != want {
				return fmt.Errorf("user %d counts %d, want %d: an addition was lost or made twice", w, u.Failures, want)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	for name := range acked {
		if name[0] == 'b' {
			delete(acked, name) // one event each, checked by the count above
		}
	}
	checkChain(t, a, acked, 2)
}

// TestAGroupThatFailsStoresNoneOfItsTransactions: writer 0 now and then
// renames its user to a name another user has, which PostgreSQL refuses
// (a unique index). Its transaction fails the group commit it shares:
// none of the group's changes or events is stored, each of the others
// runs again alone and is stored once, and writer 0 gets the refusal.
func TestAGroupThatFailsStoresNoneOfItsTransactions(t *testing.T) {
	st := openStore(t, cluster.Database(t))
	const writers, rounds = 8, 20
	id := func(w int) string { return fmt.Sprintf("usr_group%d", w) }
	err := st.Update(context.Background(), func(tx core.Tx) error {
		for w := range writers {
			u := core.User{ID: id(w), Username: fmt.Sprintf("group%d", w), Kind: api.KindPerson, Status: api.UserActive, CreatedAt: t0, UpdatedAt: t0}
			if err := tx.InsertUser(u); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	acked := map[string]bool{}
	var mu sync.Mutex
	var refused atomic.Int64
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range rounds {
				name := fmt.Sprintf("w%d-%d", w, i)
				taken := w == 0 && i%4 == 3
				err := st.Update(context.Background(), func(tx core.Tx) error {
					u, err := tx.User(id(w))
					if err != nil {
						return err
					}
					u.Failures++
					if taken {
						u.Username = "group1"
					}
					if err := tx.PutUser(u); err != nil {
						return err
					}
					return tx.Audit(&audit.Event{Time: time.Now(), Actor: api.Actor{ID: "system"}, Action: name + ".0", Target: api.Target{Type: "user", ID: id(w)}})
				})
				switch {
				case taken && err == nil:
					t.Errorf("%s: renaming to a name taken was stored", name)
				case taken:
					refused.Add(1)
				case err != nil:
					t.Errorf("%s: %v (another's refusal?)", name, err)
				default:
					mu.Lock()
					acked[name] = true
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	t.Logf("%d of %d transactions shared a commit; %d ran again; %d refused", st.Grouped(), writers*rounds, st.Retries(), refused.Load())
	err = st.View(context.Background(), func(tx core.ReadTx) error {
		for w := range writers {
			u, err := tx.User(id(w))
			if err != nil {
				return err
			}
			want := rounds
			if w == 0 {
				want -= int(refused.Load())
			}
			if u.Failures != want || u.Username != fmt.Sprintf("group%d", w) {
				return fmt.Errorf("user %d: %s counts %d, want group%d counting %d", w, u.Username, u.Failures, w, want)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	checkChain(t, st, acked, 1)
	if head, want := st.AuditHead().Seq, uint64(len(acked)); head != want {
		t.Fatalf("the chain has %d events, want %d: a refused transaction's event, or a group's, was stored", head, want)
	}
}

// TestAGroupChecksRecordsItOnlyRead: eight writers on keyfleetd A each
// read a record of their own that they do not write (so that a group's
// check names several keys of a table, and runs with generic plans,
// tx.go's genericPlansSQL) and add to their user's count, audited, many
// times at once; keyfleetd B meanwhile changes writer 0's record. Every
// transaction that read it stale runs again (the group's check finds
// it), no addition is lost or made twice, and none of A's connections
// keeps the generic plans after its transaction (SET LOCAL).
func TestAGroupChecksRecordsItOnlyRead(t *testing.T) {
	dsn := cluster.Database(t)
	a, b := openStore(t, dsn), openStore(t, dsn)
	const writers, rounds = 8, 25
	id := func(w int) string { return fmt.Sprintf("usr_grp%d", w) }
	ref := func(w int) string { return fmt.Sprintf("usr_ref%d", w) }
	err := a.Update(context.Background(), func(tx core.Tx) error {
		for w := range writers {
			for _, u := range []core.User{
				{ID: id(w), Username: fmt.Sprintf("grp%d", w), Kind: api.KindPerson, Status: api.UserActive, CreatedAt: t0, UpdatedAt: t0},
				{ID: ref(w), Username: fmt.Sprintf("ref%d", w), Kind: api.KindPerson, Status: api.UserActive, CreatedAt: t0, UpdatedAt: t0},
			} {
				if err := tx.InsertUser(u); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	stopB := keepBumping(t, b, ref(0), func(string) {})
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range rounds {
				err := a.Update(context.Background(), func(tx core.Tx) error {
					if _, err := tx.User(ref(w)); err != nil { // read, checked at the commit
						return err
					}
					u, err := tx.User(id(w))
					if err != nil {
						return err
					}
					u.Failures++
					if err := tx.PutUser(u); err != nil {
						return err
					}
					return tx.Audit(&audit.Event{Time: time.Now(), Actor: api.Actor{ID: "system"}, Action: fmt.Sprintf("a%d-%d", w, i), Target: api.Target{Type: "user", ID: id(w)}})
				})
				if err != nil {
					t.Errorf("writer %d: %v", w, err)
					return
				}
			}
		})
	}
	wg.Wait()
	stopB()
	t.Logf("%d of A's %d transactions shared a commit; %d ran again", a.Grouped(), writers*rounds, a.Retries())
	if a.Grouped() == 0 {
		t.Fatal("no transactions shared a commit: the test shows nothing")
	}
	if a.Retries() == 0 {
		t.Fatal("no transaction ran again: B's changes were never found, or the test shows nothing")
	}
	err = b.View(context.Background(), func(tx core.ReadTx) error {
		for w := range writers {
			u, err := tx.User(id(w))
			if err != nil {
				return err
			}
			if u.Failures != rounds {
				return fmt.Errorf("user %d counts %d, want %d: an addition was lost or made twice", w, u.Failures, rounds)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Every connection of A's pool plans as the server says again.
	ctx := context.Background()
	n := int(a.Pool().Stat().TotalConns())
	var conns []*pgxpool.Conn
	for range n {
		c, err := a.Pool().Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	for _, c := range conns {
		var mode string
		if err := c.QueryRow(ctx, "SHOW plan_cache_mode").Scan(&mode); err != nil {
			t.Fatal(err)
		}
		c.Release()
		if mode != "auto" {
			t.Errorf("a connection plans with plan_cache_mode = %s after its transaction, want auto", mode)
		}
	}
}
