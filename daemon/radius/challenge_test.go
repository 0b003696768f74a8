package radius_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyfleet/keyfleet/daemon/core"
	kfradius "github.com/keyfleet/keyfleet/daemon/radius"
)

// flakyChallenges is a shared challenge store whose database can stop
// answering.
type flakyChallenges struct {
	kfradius.Challenges
	down atomic.Bool
}

var errDown = errors.New("connection refused")

func (f *flakyChallenges) Put(ctx context.Context, state []byte, ch kfradius.Challenge) error {
	if f.down.Load() {
		return errDown
	}
	return f.Challenges.Put(ctx, state, ch)
}

func (f *flakyChallenges) Take(ctx context.Context, state []byte, client, user string, now time.Time) (kfradius.Challenge, error) {
	if f.down.Load() {
		return kfradius.Challenge{}, errDown
	}
	return f.Challenges.Take(ctx, state, client, user, now)
}

// TestWithoutItsChallengeStoreTheListenerRefusesAndSaysToTryAgain: when
// the database that keeps challenges does not answer, a sign-in that
// needs a challenge, and the answer to one, get an Access-Reject saying
// keyfleet cannot check sign-ins now (not a silent drop, not a hang);
// when it answers again, sign-ins work.
func TestWithoutItsChallengeStoreTheListenerRefusesAndSaysToTryAgain(t *testing.T) {
	store := &flakyChallenges{Challenges: kfradius.NewMemoryChallenges(nil)}
	e := newEnv(t, func(_ *kfradius.Config, o *kfradius.Options) { o.Challenges = store })
	e.person("hana")
	e.totpFactor("hana", "Phone")
	_, tablet := e.totpFactor("hana", "Tablet")
	first := radclient(t, e.addr, testSecret, pap("hana", code(tablet, 0))...)
	if first.code != "Access-Challenge" {
		t.Fatalf("start: %s %v", first.code, first.attrs)
	}
	store.down.Store(true)
	for _, attrs := range [][]string{pap("hana", "2", "State = "+first.attrs["State"]), pap("hana", code(tablet, 0))} {
		r := radclient(t, e.addr, testSecret, attrs...)
		if r.code != "Access-Reject" || !strings.Contains(r.attrs["Reply-Message"], "cannot check sign-ins right now") {
			t.Fatalf("with the store down: %s %v\n%s", r.code, r.attrs, r.out)
		}
	}
	store.down.Store(false)
	if r := radclient(t, e.addr, testSecret, pap("hana", "2", "State = "+first.attrs["State"])...); r.code != "Access-Challenge" {
		t.Fatalf("the challenge after the store came back: %s %v", r.code, r.attrs)
	}
	if n := len(e.events(core.LoginChallenged)); n != 2 {
		t.Fatalf("%d challenges audited, want 2 (none while the store was down)", n)
	}
}
