package directory

import (
	"context"
	"errors"
	"testing"

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
