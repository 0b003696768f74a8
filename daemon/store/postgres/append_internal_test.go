package postgres

import (
	"testing"
	"time"

	"github.com/keyfleet/keyfleet/daemon/audit"
)

// TestACommitDoesNotWaitForeverForLockedCommitsToEnd: when the tail is
// unknown, a commit waits for this keyfleetd's locked commits to end so
// that it can be pipelined; one of them may be waiting in PostgreSQL for
// a row this commit holds, so the wait is bounded and the commit then
// goes the locked way too.
func TestACommitDoesNotWaitForeverForLockedCommitsToEnd(t *testing.T) {
	a := newAppender()
	if _, pipelined := a.ticket(); pipelined {
		t.Fatal("the first commit, with no tail known, was pipelined")
	}
	start := time.Now()
	done := make(chan bool)
	go func() { _, p := a.ticket(); done <- p }()
	select {
	case p := <-done:
		if p {
			t.Fatal("a commit was pipelined while a locked one was under way")
		}
		if waited := time.Since(start); waited < drainFor/2 {
			t.Fatalf("it went the locked way after %s, without waiting for the first to end", waited)
		}
	case <-time.After(10 * drainFor):
		t.Fatal("a commit waited for a locked one that never ends")
	}
	// Both end; the last leaves the tail, and the next commit is pipelined.
	a.lockedEnded(&audit.Head{Seq: 7})
	a.lockedEnded(&audit.Head{Seq: 8})
	if _, pipelined := a.ticket(); !pipelined || a.tail == nil || a.tail.Seq != 8 {
		t.Fatalf("after the locked commits ended: pipelined %v, tail %+v; want pipelined after 8", pipelined, a.tail)
	}
}

// TestAWaitingCommitIsPipelinedOnceTheLockedOnesEnd: the drain ends the
// wait as soon as the last locked commit ends.
func TestAWaitingCommitIsPipelinedOnceTheLockedOnesEnd(t *testing.T) {
	a := newAppender()
	a.drainFor = time.Minute // it must not give up on a loaded machine
	a.ticket()               // a locked commit under way
	done := make(chan bool)
	go func() { _, p := a.ticket(); done <- p }()
	for a.waiting.Load() == 0 { // until it waits
		time.Sleep(100 * time.Microsecond)
	}
	a.lockedEnded(&audit.Head{Seq: 3})
	if !<-done {
		t.Fatal("the waiting commit was not pipelined after the locked one ended")
	}
}
