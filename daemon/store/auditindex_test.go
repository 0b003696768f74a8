package store

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/dgraph-io/badger/v4"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/audit"
	"github.com/keyfleet/keyfleet/daemon/core"
	"github.com/keyfleet/keyfleet/daemon/store/storetest"
)

// An index entry's value lists the earlier events of its commit; decoding
// gives them back in order, only those after the point asked for, and a
// value that does not decode (a distance of zero, past zero, or cut
// short) is an error rather than a wrong list.
func TestAuditIndexEntryValues(t *testing.T) {
	tests := []struct {
		name  string
		seqs  []uint64
		after uint64
		want  string
	}{
		{"one event", []uint64{7}, 0, "[7]"},
		{"consecutive", []uint64{5, 6, 7, 8}, 0, "[5 6 7 8]"},
		{"with gaps", []uint64{3, 200, 201, 100000}, 0, "[3 200 201 100000]"},
		{"after one of them", []uint64{3, 200, 201, 100000}, 200, "[201 100000]"},
		{"after all but the last", []uint64{5, 6, 7, 8}, 7, "[8]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			last := tt.seqs[len(tt.seqs)-1]
			got, err := decodeEntry([]uint64{1}, last, encodeEarlier(tt.seqs), tt.after)
			if err != nil || fmt.Sprint(got[1:]) != tt.want || got[0] != 1 {
				t.Fatalf("decoded %v, %v; want [1] then %s", got, err, tt.want)
			}
		})
	}
	for name, v := range map[string][]byte{
		"a distance of zero":   {0},
		"past the first event": {5, 5},
		"cut short":            {0x80},
	} {
		if got, err := decodeEntry(nil, 9, v, 0); !errors.Is(err, errAuditIndex) {
			t.Errorf("%s: %v, %v; want errAuditIndex", name, got, err)
		}
	}
}

// A store of schema 3 has an index entry per event; opening it as schema
// 4 keeps them, and events written after, several to an entry, are found
// with them, in order.
func TestASchema3StoreReadsItsAuditIndexEntriesAfterTheUpgrade(t *testing.T) {
	dir := t.TempDir()
	st, _ := openAt(t, dir, nil)
	var want []uint64
	for i := range 3 { // one event a commit: an entry each, with an empty value, as schema 3 wrote them
		err := st.Update(context.Background(), func(tx core.Tx) error {
			return tx.Audit(&audit.Event{Actor: api.Actor{ID: "usr_old"}, Action: "test.before", Target: api.Target{ID: fmt.Sprint(i)}})
		})
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, st.AuditHead().Seq)
	}
	err := st.db.Update(func(txn *badger.Txn) error { return txn.Set([]byte(kSchema), []byte("3")) })
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	st, _ = openAt(t, dir, nil)
	defer st.Close()
	if v, err := st.schema(); err != nil || v != schemaVersion {
		t.Fatalf("schema %q, %v; want %s", v, err, schemaVersion)
	}
	head := st.AuditHead().Seq
	err = st.Update(context.Background(), func(tx core.Tx) error {
		for i := range 4 {
			if err := tx.Audit(&audit.Event{Actor: api.Actor{ID: "usr_old"}, Action: "test.step", Target: api.Target{ID: fmt.Sprint(i)}}); err != nil {
				return err
			}
			want = append(want, head+uint64(i)+1)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(keysUnder(t, st, pAuditActor)); n != 3+1 {
		t.Errorf("%d entries by actor; want the 3 of schema 3 and 1 for the commit", n)
	}
	st.View(context.Background(), func(tx core.ReadTx) error {
		got, err := storetest.AuditBy(tx, core.AuditActor, "usr_old", 0, 100)
		if err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("by actor: %v, %v; want %v", got, err, want)
		}
		return nil
	})
}
