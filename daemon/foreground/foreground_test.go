package foreground

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestWaitGoesOnAtOnceWhenNothingIsServed(t *testing.T) {
	var g Gate
	_, leave := g.Enter(context.Background())
	leave()
	leave() // a second call gives nothing back twice
	if n := g.InFlight(); n != 0 {
		t.Fatalf("in flight after leave: %d", n)
	}
	start := time.Now()
	if err := g.Wait(context.Background(), time.Hour); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("Wait with nothing in flight took %v", d)
	}
	if n, _ := g.Waited(); n != 0 {
		t.Fatalf("a wait that found nothing in flight was counted: %d", n)
	}
}

func TestWaitEndsWhenTheLastRequestEnds(t *testing.T) {
	var g Gate
	_, leave1 := g.Enter(context.Background())
	_, leave2 := g.Enter(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Wait(context.Background(), time.Hour) }()
	leave1()
	select {
	case err := <-done:
		t.Fatalf("Wait returned (%v) with one request still in flight", err)
	case <-time.After(50 * time.Millisecond):
	}
	leave2()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Wait did not return once the last request ended")
	}
	if n, d := g.Waited(); n != 1 || d <= 0 {
		t.Fatalf("Waited: %d waits, %v", n, d)
	}
	// The gate is reusable: a new request makes Wait wait again.
	_, leave3 := g.Enter(context.Background())
	defer leave3()
	if err := g.Wait(context.Background(), 10*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if n, _ := g.Waited(); n != 2 {
		t.Fatalf("the second wait was not counted: %d", n)
	}
}

func TestWaitIsBoundedAndEndsWithItsContext(t *testing.T) {
	var g Gate
	_, leave := g.Enter(context.Background()) // a request that never ends
	defer leave()
	start := time.Now()
	if err := g.Wait(context.Background(), 30*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 30*time.Millisecond || d > 5*time.Second {
		t.Fatalf("a wait bounded at 30ms took %v", d)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := g.Wait(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait with its context ended: %v", err)
	}
}

func TestReleaseStopsCountingAStreamOnce(t *testing.T) {
	var g Gate
	ctx, leave := g.Enter(context.Background())
	_, other := g.Enter(context.Background())
	Release(ctx)
	Release(ctx)
	leave() // the handler's deferred leave after its release gives nothing back
	if n := g.InFlight(); n != 1 {
		t.Fatalf("in flight after one request released and left: %d, want the other one", n)
	}
	other()
	if n := g.InFlight(); n != 0 {
		t.Fatalf("in flight at the end: %d", n)
	}
	Release(context.Background()) // a context no gate made: nothing happens
}

func TestANilGateCountsNothingAndNeverWaits(t *testing.T) {
	var g *Gate
	ctx, leave := g.Enter(context.Background())
	Release(ctx)
	leave()
	if g.InFlight() != 0 {
		t.Fatal("a nil gate counted")
	}
	if err := g.Wait(context.Background(), time.Hour); err != nil {
		t.Fatal(err)
	}
	if n, d := g.Waited(); n != 0 || d != 0 {
		t.Fatal("a nil gate waited")
	}
}
