package core_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/core"
	"github.com/keyfleet/keyfleet/daemon/core/coretest"
	"github.com/keyfleet/keyfleet/daemon/foreground"
	"github.com/keyfleet/keyfleet/daemon/seal"
	"github.com/keyfleet/keyfleet/plugins/sdk"
)

// viewCounter counts the read transactions a store runs.
type viewCounter struct {
	core.Store
	views atomic.Int64
}

func (v *viewCounter) View(ctx context.Context, fn func(core.ReadTx) error) error {
	v.views.Add(1)
	return v.Store.View(ctx, fn)
}

// sweepEnv is a service counting requests through g, with n users
// imported (over several of the sweep's batches), on a store whose read
// transactions are counted.
func sweepEnv(t *testing.T, n int) (*core.Service, *foreground.Gate, *viewCounter) {
	t.Helper()
	_, st := openService(t, core.Config{})
	vc := &viewCounter{Store: st}
	sl, _ := seal.New(make([]byte, 32))
	g := &foreground.Gate{}
	svc, err := core.New(core.Config{Store: vc, Sealer: sl, Kinds: []sdk.Factor{coretest.Kind{}}, Foreground: g})
	if err != nil {
		t.Fatal(err)
	}
	in := api.ImportUsers{}
	for i := range n {
		in.Users = append(in.Users, api.CreateUser{Username: fmt.Sprintf("u%04d", i), Groups: []string{"eng"}})
	}
	if res, err := svc.ImportUsers(context.Background(), core.System, in); err != nil || res.Created != n {
		t.Fatalf("import: %+v, %v", res, err)
	}
	return svc, g, vc
}

// during is how many read transactions f ran.
func (v *viewCounter) during(f func()) int64 {
	n := v.views.Load()
	f()
	return v.views.Load() - n
}

// The periodic sweep waits while a request is being served and goes on
// once it ends, with the same report.
func TestTheSweepGivesWayToARequestInFlight(t *testing.T) {
	svc, g, _ := sweepEnv(t, 700)
	ctx := context.Background()
	alone, _, err := svc.ComplianceSweep(ctx, 0)
	if err != nil || alone.Overall.Users != 700 {
		t.Fatalf("sweep with nothing served: %d users, %v", alone.Overall.Users, err)
	}
	if n, _ := g.Waited(); n != 0 {
		t.Fatalf("the sweep waited %d times with nothing served", n)
	}

	_, leave := g.Enter(ctx) // a request being served
	type result struct {
		rep api.ComplianceReport
		err error
	}
	done := make(chan result, 1)
	go func() {
		rep, _, err := svc.ComplianceSweep(ctx, 0)
		done <- result{rep, err}
	}()
	for deadline := time.Now().Add(10 * time.Second); ; {
		if n, _ := g.Waited(); n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the sweep never paused for the request in flight")
		}
		time.Sleep(time.Millisecond)
	}
	leave()
	r := <-done
	if r.err != nil || r.rep.Overall != alone.Overall {
		t.Fatalf("sweep after giving way: %+v, %v; want %+v", r.rep.Overall, r.err, alone.Overall)
	}
}

// A request that never ends slows the sweep down (each pause is bounded)
// but does not stop it. The sweep pauses between read transactions,
// never in one, where it would hold the store's snapshot while it waits.
func TestTheSweepEndsUnderRequestsThatNeverEnd(t *testing.T) {
	svc, g, vc := sweepEnv(t, 700)
	ctx := context.Background()
	alone := vc.during(func() { svc.ComplianceSweep(ctx, 0) })

	_, leave := g.Enter(ctx)
	defer leave()
	var rep api.ComplianceReport
	var err error
	busy := vc.during(func() { rep, _, err = svc.ComplianceSweep(ctx, 0) })
	if err != nil || rep.Overall.Users != 700 {
		t.Fatalf("sweep: %d users, %v", rep.Overall.Users, err)
	}
	// 700 users are three batches: a bounded pause between each two, each
	// after a read transaction ended.
	if n, d := g.Waited(); n != 2 || d < 2*15*time.Millisecond {
		t.Fatalf("the sweep paused %d times for %v in all; want one bounded pause between each two of its three batches", n, d)
	}
	if busy != alone+2 {
		t.Fatalf("the sweep read in %d transactions giving way, %d alone; want two more, one after each pause", busy, alone)
	}
}

// A report someone asked for does not wait: only the periodic sweep
// gives way.
func TestAReportAskedForDoesNotWait(t *testing.T) {
	svc, g, _ := sweepEnv(t, 300)
	_, leave := g.Enter(context.Background())
	defer leave()
	rep, err := svc.ComplianceReport(context.Background(), core.System, "", 0)
	if err != nil || rep.Overall.Users != 300 {
		t.Fatalf("report: %d users, %v", rep.Overall.Users, err)
	}
	if n, _ := g.Waited(); n != 0 {
		t.Fatalf("the report waited %d times", n)
	}
}
