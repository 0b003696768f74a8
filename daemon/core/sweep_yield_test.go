package core_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/core"
	"github.com/keyfleet/keyfleet/daemon/core/coretest"
	"github.com/keyfleet/keyfleet/daemon/foreground"
	"github.com/keyfleet/keyfleet/plugins/sdk"
)

// sweepEnv is a service counting requests through g, with n users
// imported (over several of the sweep's batches).
func sweepEnv(t *testing.T, n int) (*core.Service, *foreground.Gate) {
	t.Helper()
	g := &foreground.Gate{}
	svc, _ := openService(t, core.Config{Kinds: []sdk.Factor{coretest.Kind{}}, Foreground: g})
	in := api.ImportUsers{}
	for i := range n {
		in.Users = append(in.Users, api.CreateUser{Username: fmt.Sprintf("u%04d", i), Groups: []string{"eng"}})
	}
	if res, err := svc.ImportUsers(context.Background(), core.System, in); err != nil || res.Created != n {
		t.Fatalf("import: %+v, %v", res, err)
	}
	return svc, g
}

// The periodic sweep waits while a request is being served and goes on
// once it ends, with the same report.
func TestTheSweepGivesWayToARequestInFlight(t *testing.T) {
	svc, g := sweepEnv(t, 700)
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
// but does not stop it.
func TestTheSweepEndsUnderRequestsThatNeverEnd(t *testing.T) {
	svc, g := sweepEnv(t, 700)
	_, leave := g.Enter(context.Background())
	defer leave()
	rep, _, err := svc.ComplianceSweep(context.Background(), 0)
	if err != nil || rep.Overall.Users != 700 {
		t.Fatalf("sweep: %d users, %v", rep.Overall.Users, err)
	}
	// 700 users are three batches: each paused before it was read and
	// before it was evaluated.
	if n, d := g.Waited(); n < 3 || d < 3*15*time.Millisecond {
		t.Fatalf("the sweep paused %d times for %v in all; want at least one bounded pause per batch", n, d)
	}
}

// A report someone asked for does not wait: only the periodic sweep
// gives way.
func TestAReportAskedForDoesNotWait(t *testing.T) {
	svc, g := sweepEnv(t, 300)
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
