package cluster_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keyfleet/keyfleet/daemon/cluster"
	"github.com/keyfleet/keyfleet/daemon/core"
	"github.com/keyfleet/keyfleet/daemon/radius"
)

func (n *node) challenges() *cluster.RadiusChallenges {
	return &cluster.RadiusChallenges{Pool: n.st.Pool(), Sealer: n.st}
}

func newState(t *testing.T) []byte {
	t.Helper()
	s := make([]byte, radius.StateLen)
	if _, err := rand.Read(s); err != nil {
		t.Fatal(err)
	}
	return s
}

// picking is the challenge a listener files for a user with two TOTP
// factors: pick one.
func picking(user string, expires time.Time) radius.Challenge {
	return radius.Challenge{Client: "vpn-gw1", User: user, Stage: radius.StagePick, Node: "node-a", Expires: expires,
		Factors: []core.LoginFactor{{ID: "fac_phone", Kind: "totp", Label: "Phone", Inputs: []string{"code"}},
			{ID: "fac_tablet", Kind: "totp", Label: "Tablet", Inputs: []string{"code"}}}}
}

func TestAChallengeAskedByOneKeyfleetdIsAnsweredOnAnotherOnce(t *testing.T) {
	dsn, key := newDatabase(t)
	a, b := open(t, dsn, key).challenges(), open(t, dsn, key).challenges()
	ctx, state := context.Background(), newState(t)
	if err := a.Put(ctx, state, picking("alice", t0.Add(2*time.Minute))); err != nil {
		t.Fatal(err)
	}
	got, err := b.Take(ctx, state, "vpn-gw1", "alice", t0.Add(time.Minute))
	if err != nil || got.Stage != radius.StagePick || len(got.Factors) != 2 || got.Factors[1].ID != "fac_tablet" || got.Node != "node-a" {
		t.Fatalf("the other keyfleetd took %+v, %v", got, err)
	}
	for _, n := range []*cluster.RadiusChallenges{a, b} {
		if _, err := n.Take(ctx, state, "vpn-gw1", "alice", t0.Add(time.Minute)); !errors.Is(err, radius.ErrNoChallenge) {
			t.Fatalf("the State answered a second time: %v", err)
		}
	}
}

// TestTwoKeyfleetdRacingForOneStateGiveItToOne: a NAS (or an attacker
// who captured the State) sends the same answer to both keyfleetd at
// once, many times over: each challenge is taken exactly once.
func TestTwoKeyfleetdRacingForOneStateGiveItToOne(t *testing.T) {
	dsn, key := newDatabase(t)
	nodes := []*cluster.RadiusChallenges{open(t, dsn, key).challenges(), open(t, dsn, key).challenges()}
	ctx := context.Background()
	for round := range 20 {
		state := newState(t)
		if err := nodes[round%2].Put(ctx, state, picking("bob", t0.Add(time.Minute))); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		taken := 0
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := nodes[i%2].Take(ctx, state, "vpn-gw1", "bob", t0)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					taken++
				case !errors.Is(err, radius.ErrNoChallenge):
					t.Errorf("take: %v", err)
				}
			}()
		}
		wg.Wait()
		if taken != 1 {
			t.Fatalf("round %d: the challenge was taken %d times", round, taken)
		}
	}
}

func TestAnExpiredChallengeIsRefusedAndSwept(t *testing.T) {
	dsn, key := newDatabase(t)
	n := open(t, dsn, key)
	c := n.challenges()
	ctx := context.Background()
	late, kept := newState(t), newState(t)
	c.Put(ctx, late, picking("carol", t0.Add(time.Minute)))
	c.Put(ctx, kept, picking("carol", t0.Add(3*time.Minute)))
	if _, err := c.Take(ctx, late, "vpn-gw1", "carol", t0.Add(time.Minute)); !errors.Is(err, radius.ErrNoChallenge) {
		t.Fatalf("an answer at the expiry was taken: %v", err)
	}
	if err := c.Sweep(ctx, t0.Add(2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if got := rowCount(t, n); got != 1 {
		t.Fatalf("after the sweep %d challenges are left, want the unexpired one", got)
	}
	if _, err := c.Take(ctx, kept, "vpn-gw1", "carol", t0.Add(2*time.Minute)); err != nil {
		t.Fatalf("the unexpired challenge: %v", err)
	}
}

// TestAChallengeAnsweredByAnotherClientOrUserIsRefusedAndGone: mallory
// learnt the State of dave's challenge. Sent from another NAS, or with
// her own user name, it is refused, and the challenge is spent: dave
// must start again rather than mallory getting more tries.
func TestAChallengeAnsweredByAnotherClientOrUserIsRefusedAndGone(t *testing.T) {
	dsn, key := newDatabase(t)
	a, b := open(t, dsn, key).challenges(), open(t, dsn, key).challenges()
	ctx := context.Background()
	for _, try := range []struct{ client, user string }{{"wifi-ctrl", "dave"}, {"vpn-gw1", "mallory"}} {
		state := newState(t)
		a.Put(ctx, state, picking("dave", t0.Add(time.Minute)))
		if got, err := b.Take(ctx, state, try.client, try.user, t0); !errors.Is(err, radius.ErrNoChallenge) {
			t.Fatalf("%s about %s took dave's challenge: %+v, %v", try.client, try.user, got, err)
		}
		if _, err := a.Take(ctx, state, "vpn-gw1", "dave", t0); !errors.Is(err, radius.ErrNoChallenge) {
			t.Fatalf("the challenge survived a wrong answer: %v", err)
		}
	}
	if _, err := b.Take(ctx, []byte("short"), "vpn-gw1", "dave", t0); !errors.Is(err, radius.ErrNoChallenge) {
		t.Fatalf("a malformed State: %v", err)
	}
}

// TestOneUserCannotGrowTheTableWithoutBound: a flood of sign-ins for one
// user keeps MaxPerUser challenges, the newest; others' are untouched.
func TestOneUserCannotGrowTheTableWithoutBound(t *testing.T) {
	dsn, key := newDatabase(t)
	n := open(t, dsn, key)
	c := n.challenges()
	c.MaxPerUser = 4
	ctx := context.Background()
	erin := newState(t)
	c.Put(ctx, erin, picking("erin", t0.Add(time.Minute)))
	var states [][]byte
	for i := range 10 {
		s := newState(t)
		states = append(states, s)
		if err := c.Put(ctx, s, picking("frank", t0.Add(time.Minute+time.Duration(i)*time.Second))); err != nil {
			t.Fatal(err)
		}
	}
	if got := rowCount(t, n); got != 5 {
		t.Fatalf("%d challenges kept, want 4 of frank's and erin's", got)
	}
	if _, err := c.Take(ctx, states[5], "vpn-gw1", "frank", t0); !errors.Is(err, radius.ErrNoChallenge) {
		t.Fatalf("an older challenge of frank's survived the cap: %v", err)
	}
	for _, s := range append(states[6:], erin) {
		user := "frank"
		if bytes.Equal(s, erin) {
			user = "erin"
		}
		if _, err := c.Take(ctx, s, "vpn-gw1", user, t0); err != nil {
			t.Fatalf("a newest challenge of %s's was lost: %v", user, err)
		}
	}
}

// TestADumpOfTheChallengesHoldsNoStateOrName: pg_dump of the database
// shows neither the State a NAS holds (which would answer the challenge)
// nor the user name, client or factor labels; a sealed challenge copied
// under another State does not open there.
func TestADumpOfTheChallengesHoldsNoStateOrName(t *testing.T) {
	dsn, key := newDatabase(t)
	na := open(t, dsn, key)
	a, b := na.challenges(), open(t, dsn, key).challenges()
	ctx := context.Background()
	gina, mine := newState(t), newState(t)
	a.Put(ctx, gina, picking("gina.rossi", t0.Add(time.Minute)))
	a.Put(ctx, mine, picking("mallory", t0.Add(time.Minute)))
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	dump, err := cl.Dump(cfg.Database)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(dump, []byte("radius_challenges")) {
		t.Fatal("the dump has no radius_challenges table: the test looks in the wrong place")
	}
	for _, secret := range [][]byte{gina, []byte(hex.EncodeToString(gina)), []byte("gina.rossi"), []byte("vpn-gw1"), []byte("Tablet"), []byte("fac_phone")} {
		if bytes.Contains(dump, secret) {
			t.Fatalf("the dump shows %q", secret)
		}
	}
	// Mallory, with write access to the table, copies gina's sealed
	// challenge under the State of her own.
	// (The rows are filed under the keyed hash of the State, which she
	// reads off the table by elimination; the test computes it.)
	kGina, kMine := na.st.Index("radius_state", string(gina)), na.st.Index("radius_state", string(mine))
	admin(t, dsn, "UPDATE radius_challenges SET rec = (SELECT rec FROM radius_challenges WHERE k = $1) WHERE k = $2", kGina, kMine)
	var same bool
	na.st.Pool().QueryRow(ctx, "SELECT (SELECT rec FROM radius_challenges WHERE k = $1) = (SELECT rec FROM radius_challenges WHERE k = $2)", kGina, kMine).Scan(&same)
	if !same {
		t.Fatal("the copy did not happen: the test looks in the wrong place")
	}
	if got, err := b.Take(ctx, mine, "vpn-gw1", "gina.rossi", t0); err == nil {
		t.Fatalf("gina's challenge opened under mallory's State: %+v", got)
	}
}

func rowCount(t *testing.T, n *node) int {
	t.Helper()
	var c int
	if err := n.st.Pool().QueryRow(context.Background(), "SELECT count(*) FROM radius_challenges").Scan(&c); err != nil {
		t.Fatal(err)
	}
	return c
}
