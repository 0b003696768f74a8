package directory

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"unsafe"

	"github.com/go-ldap/ldap/v3"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/store"
)

// A store with a small memtable takes fewer changes in one transaction
// than a batch holds: the sync splits the batch and goes on.
func TestASyncSplitsBatchesTheStoreCannotTakeWhole(t *testing.T) {
	rd := newMemReader(1500)
	s, _ := memSyncer(t, rd, store.Options{MemTableSize: 1 << 20})
	rep, err := s.Sync(context.Background(), api.DirectorySync{})
	if err != nil || rep.Created != 1500 {
		t.Fatalf("sync into a 1 MiB memtable: %d created, %v", rep.Created, err)
	}
	if again, err := s.Sync(context.Background(), api.DirectorySync{}); err != nil || again.Unchanged != 1500 {
		t.Fatalf("the second sync: %d unchanged, %v", again.Unchanged, err)
	}
}

// A server that refuses the IN_CHAIN filter (does not know the rule or
// memberOf) is told from one that went away or denies the search: the
// first makes keyfleet resolve the nesting itself, the others stop the
// sync.
func TestARefusedInChainSearchIsToldFromAFailedOne(t *testing.T) {
	for _, tc := range []struct {
		code   uint16
		refuse bool
	}{
		{ldap.LDAPResultInappropriateMatching, true},
		{ldap.LDAPResultUndefinedAttributeType, true},
		{ldap.LDAPResultUnwillingToPerform, true},
		{ldap.LDAPResultProtocolError, true},
		{ldap.LDAPResultOperationsError, true},
		{ldap.LDAPResultInsufficientAccessRights, false},
		{ldap.LDAPResultUnavailable, false},
		{ldap.LDAPResultBusy, false},
		{ldap.ErrorNetwork, false},
	} {
		err := classify("searching", ldap.NewError(tc.code, errors.New("test")))
		if got := refusesRule(err); got != tc.refuse {
			t.Errorf("result %d (%s): refuses the rule %v, want %v", tc.code, ldap.LDAPResultCodeMap[tc.code], got, tc.refuse)
		}
	}
	if refusesRule(errors.New("not an LDAP error")) {
		t.Error("an error without a result code counts as a refusal")
	}
}

// A directory that takes more than a quarter of the memory limit is
// said so, with what to raise; below it, or without a limit, nothing.
func TestTheDirectorysMemoryIsWarnedOfAboveAQuarterOfTheLimit(t *testing.T) {
	const limit = 320 << 20
	if w := memoryWarning(80<<20, 300_000, limit); w != "" {
		t.Errorf("80 MiB of a 320 MiB limit: %q", w)
	}
	w := memoryWarning(100<<20, 400_000, limit)
	for _, want := range []string{"100 MiB", "262 bytes a user", "400000 users", "320 MiB", "raise store.memory by at least 300 MiB", "Memory"} {
		if !strings.Contains(w, want) {
			t.Errorf("the warning %q does not say %q", w, want)
		}
	}
	if w := memoryWarning(1<<30, 1_000_000, math.MaxInt64); w != "" {
		t.Errorf("no limit: %q", w)
	}
}

// A user read again with the same fields shares the earlier read's
// text; one whose fields changed gets its own, and each field reads back
// as given, the normalised DN too.
func TestAUserReadAgainUnchangedSharesTheEarlierText(t *testing.T) {
	old := newDirUser(nil, "id-1", "uid=Ann, ou=People,dc=example,dc=org", "ann", "Ann A", "ann@example.org", false)
	if got := [...]string{old.id(), old.dn(), old.username(), old.displayName(), old.email(), old.normDN()}; got !=
		[...]string{"id-1", "uid=Ann, ou=People,dc=example,dc=org", "ann", "Ann A", "ann@example.org", "uid=ann,ou=people,dc=example,dc=org"} {
		t.Fatalf("fields read back as %q", got)
	}
	same := newDirUser(&old, "id-1", "uid=Ann, ou=People,dc=example,dc=org", "ann", "Ann A", "ann@example.org", true)
	if unsafe.StringData(same.s) != unsafe.StringData(old.s) || !same.disabled {
		t.Error("an unchanged user was given text of its own, or lost its disabled flag")
	}
	moved := newDirUser(&old, "id-1", "uid=ann,ou=people,dc=example,dc=org", "ann", "Ann A", "ann@example.org", false)
	if unsafe.StringData(moved.s) == unsafe.StringData(old.s) || moved.dn() != moved.normDN() || moved.dn() != "uid=ann,ou=people,dc=example,dc=org" {
		t.Errorf("a user with a new DN: %q, normalised %q", moved.dn(), moved.normDN())
	}
}
