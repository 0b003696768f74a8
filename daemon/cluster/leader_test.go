package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keyfleet/keyfleet/daemon/cluster"
)

// candidate is one keyfleetd trying for leadership: it records when it
// led and the session that held the lock.
type candidate struct {
	name    string
	e       *cluster.Elector
	pid     atomic.Uint32 // backend of the connection that last took the lock
	leading atomic.Bool
	terms   atomic.Int32 // times lead ran
	ended   chan string  // lead returned (its context ended)
	stop    context.CancelFunc
	done    chan struct{}
}

// race counts how many candidates lead at once.
type race struct {
	now, most atomic.Int32
}

func (r *race) enter() {
	n := r.now.Add(1)
	for {
		m := r.most.Load()
		if n <= m || r.most.CompareAndSwap(m, n) {
			return
		}
	}
}

func (r *race) leave() { r.now.Add(-1) }

// start runs an Elector on dsn until the test ends or c.stop is called.
func start(t *testing.T, name, dsn string, r *race) *candidate {
	t.Helper()
	c := &candidate{name: name, ended: make(chan string, 16), done: make(chan struct{})}
	e, err := cluster.NewElector(cluster.ElectorConfig{Every: 50 * time.Millisecond,
		Connect: func(ctx context.Context) (*pgx.Conn, error) {
			conn, err := pgx.Connect(ctx, dsn)
			if err == nil {
				c.pid.Store(conn.PgConn().PID())
			}
			return conn, err
		}})
	if err != nil {
		t.Fatal(err)
	}
	c.e = e
	ctx, stop := context.WithCancel(context.Background())
	c.stop = stop
	go func() {
		defer close(c.done)
		e.Run(ctx, func(ctx context.Context) {
			r.enter()
			c.leading.Store(true)
			c.terms.Add(1)
			<-ctx.Done()
			c.leading.Store(false)
			r.leave()
			c.ended <- name
		})
	}()
	t.Cleanup(func() { stop(); <-c.done })
	return c
}

// leaderOf waits until exactly one of cs leads and returns it.
func leaderOf(t *testing.T, cs ...*candidate) *candidate {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		var leaders []*candidate
		for _, c := range cs {
			if c.leading.Load() && c.e.Leader() {
				leaders = append(leaders, c)
			}
		}
		if len(leaders) == 1 {
			return leaders[0]
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("no single leader within 10s")
	return nil
}

func others(all []*candidate, not *candidate) []*candidate {
	var out []*candidate
	for _, c := range all {
		if c != not {
			out = append(out, c)
		}
	}
	return out
}

func TestOneOfThreeKeyfleetdLeadsAndTheOthersWait(t *testing.T) {
	dsn := cl.Database(t)
	var r race
	cs := []*candidate{start(t, "k1", dsn, &r), start(t, "k2", dsn, &r), start(t, "k3", dsn, &r)}
	leader := leaderOf(t, cs...)
	time.Sleep(500 * time.Millisecond) // ten rounds of the others trying
	for _, c := range others(cs, leader) {
		if c.e.Leader() || c.terms.Load() != 0 {
			t.Fatalf("%s led while %s held the lock", c.name, leader.name)
		}
	}
	if leader.terms.Load() != 1 || r.most.Load() != 1 {
		t.Fatalf("the leader started %d terms; at most %d led at once", leader.terms.Load(), r.most.Load())
	}
}

// TestTheLeadershipPassesWhenTheLeadersConnectionDies: PostgreSQL ends
// the leader's session (as when its machine drops off the network); the
// leader notices at its next check and stops its work, and another
// keyfleetd takes the lock.
func TestTheLeadershipPassesWhenTheLeadersConnectionDies(t *testing.T) {
	dsn := cl.Database(t)
	var r race
	cs := []*candidate{start(t, "k1", dsn, &r), start(t, "k2", dsn, &r)}
	first := leaderOf(t, cs...)
	admin(t, dsn, "SELECT pg_terminate_backend($1)", int32(first.pid.Load()))
	select {
	case name := <-first.ended:
		if name != first.name {
			t.Fatalf("%s's work ended, want %s's", name, first.name)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("%s kept leading after its connection died", first.name)
	}
	second := leaderOf(t, cs...)
	if second == first {
		// The old leader may win the lock again; then it started a new
		// term on a new connection.
		if first.terms.Load() != 2 {
			t.Fatalf("%s leads again in term %d, want 2", first.name, first.terms.Load())
		}
	}
	if r.most.Load() != 1 {
		t.Fatalf("%d led at once", r.most.Load())
	}
}

func TestTheLeadershipPassesWhenTheLeaderStops(t *testing.T) {
	dsn := cl.Database(t)
	var r race
	cs := []*candidate{start(t, "k1", dsn, &r), start(t, "k2", dsn, &r), start(t, "k3", dsn, &r)}
	first := leaderOf(t, cs...)
	first.stop()
	<-first.done // Run returns once the work has ended
	if first.e.Leader() {
		t.Fatal("a stopped elector still says it leads")
	}
	next := leaderOf(t, others(cs, first)...)
	next.stop()
	<-next.done
	leaderOf(t, others(others(cs, first), next)...)
	if r.most.Load() != 1 {
		t.Fatalf("%d led at once", r.most.Load())
	}
}

func TestAnElectorThatCannotReachTheDatabaseNeverLeads(t *testing.T) {
	var tries atomic.Int32
	e, err := cluster.NewElector(cluster.ElectorConfig{Every: 20 * time.Millisecond,
		Connect: func(ctx context.Context) (*pgx.Conn, error) {
			tries.Add(1)
			return nil, errors.New("connection refused")
		}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	led := false
	e.Run(ctx, func(context.Context) { led = true })
	if led || e.Leader() {
		t.Fatal("an elector without a database led")
	}
	if tries.Load() < 3 {
		t.Fatalf("it tried %d times in 300ms, want it to keep trying", tries.Load())
	}
}

func TestAnElectorNeedsAWayToConnect(t *testing.T) {
	if _, err := cluster.NewElector(cluster.ElectorConfig{}); err == nil {
		t.Fatal("NewElector without Connect was accepted")
	}
}

// TestManyElectorsStartingTogetherElectOne: a rolling restart starts
// several keyfleetd at once.
func TestManyElectorsStartingTogetherElectOne(t *testing.T) {
	dsn := cl.Database(t)
	var r race
	var cs []*candidate
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range 6 {
		wg.Go(func() {
			c := start(t, fmt.Sprintf("k%d", i), dsn, &r)
			mu.Lock()
			cs = append(cs, c)
			mu.Unlock()
		})
	}
	wg.Wait()
	leaderOf(t, cs...)
	time.Sleep(300 * time.Millisecond)
	if r.most.Load() != 1 {
		t.Fatalf("%d led at once", r.most.Load())
	}
}
