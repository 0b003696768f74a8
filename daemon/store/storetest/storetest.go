// Package storetest is the conformance suite every implementation of
// core.Store passes: Badger (daemon/store) and PostgreSQL
// (daemon/store/postgres) run the same tests, so that the domain behaves
// the same on either. It covers every method of the interface, paging
// and filters, uniqueness, collisions between concurrent transactions
// and their retries, the audit chain under concurrent writers, the event
// sinks' cursors, and durability after the writing process is killed.
//
// A backend runs it with
//
//	func TestConformance(t *testing.T) { storetest.Run(t, backend) }
//	func TestMain(m *testing.M) { storetest.Child(backend); os.Exit(m.Run()) }
//
// Child makes the test binary the killed writer of the durability test
// when the suite starts it again.
package storetest

import (
	"context"
	"testing"

	"github.com/keyfleet/keyfleet/daemon/core"
	"github.com/keyfleet/keyfleet/daemon/events"
)

// Store is what the suite tests: the domain's store, the sinks' cursors,
// and Close.
type Store interface {
	core.Store
	events.CursorStore
	Close() error
}

// Backend makes and opens stores.
type Backend struct {
	// New makes an empty place for a store (a folder, a database) and
	// returns its name; it is removed when t ends.
	New func(t testing.TB) string
	// Open opens the store at place, creating it if it is empty.
	Open func(place string) (Store, error)
}

// Run runs the whole suite against b.
func Run(t *testing.T, b Backend) {
	tests := []struct {
		name string
		fn   func(*testing.T, Backend)
	}{
		{"Users", testUsers},
		{"UserLists", testUserLists},
		{"Factors", testFactors},
		{"Devices", testDevices},
		{"Enrolments", testEnrolments},
		{"TokensAndApprovals", testTokensApprovals},
		{"TokenWithUser", testTokenWithUser},
		{"Verifications", testVerifications},
		{"Policy", testPolicy},
		{"PolicyFacts", testPolicyFacts},
		{"Recovery", testRecovery},
		{"Directory", testDirectory},
		{"Audit", testAudit},
		{"FailedTransactionLeavesNothing", testFailedTx},
		{"ReadsItsOwnWrites", testOwnWrites},
		{"Cursors", testCursors},
		{"ConcurrentIncrementsAllCount", testConcurrentIncrements},
		{"ConcurrentInsertsOfOneName", testConcurrentInserts},
		{"ANameFoundFreeAndThenTakenIsRefused", testNameFoundFreeThenTaken},
		{"ConcurrentLookupsThenInsertsOfOneName", testConcurrentLookupInserts},
		{"NoWriteSkew", testWriteSkew},
		{"ChainUnderConcurrentWriters", testChainConcurrent},
		{"DurableAfterKill", testDurableAfterKill},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, b) })
	}
}

// open makes a new store for t, closed when t ends.
func open(t *testing.T, b Backend) Store {
	t.Helper()
	st, err := b.Open(b.New(t))
	if err != nil {
		t.Fatalf("opening a new store: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func update(t *testing.T, st Store, fn func(core.Tx) error) {
	t.Helper()
	if err := st.Update(context.Background(), fn); err != nil {
		t.Fatalf("Update: %v", err)
	}
}

func view(t *testing.T, st Store, fn func(core.ReadTx) error) {
	t.Helper()
	if err := st.View(context.Background(), fn); err != nil {
		t.Fatalf("View: %v", err)
	}
}
