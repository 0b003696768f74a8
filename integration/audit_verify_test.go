package integration

import (
	"encoding/binary"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/dgraph-io/badger/v4"

	"github.com/keyfleet/keyfleet/api"
)

// audit verify costs the events since the newest signed checkpoint, not
// the whole history; --full (?full=true) checks every record. The story:
// someone who holds the store key quietly edits an old audit record
// while keyfleetd is stopped, keeping the record's stored hash. The
// default check does not read that far back and says so (from_seq); the
// full check finds the edit.
func TestAuditVerifyChecksFromTheNewestCheckpointAndEverythingOnDemand(t *testing.T) {
	dir := initData(t)
	d := start(t, dir)
	token := adminToken(t, dir)
	for _, name := range []string{"ann", "ben", "cal", "dee", "eve"} {
		if code := d.call(token, "POST", "/v1/users", api.CreateUser{Username: name}, nil); code != 201 {
			t.Fatalf("creating %s: %d", name, code)
		}
	}
	var before api.AuditVerification
	if d.call(token, "GET", "/v1/audit/verify?full=true", nil, &before); !before.OK || !before.Full || before.Checked != before.HeadSeq {
		t.Fatalf("a full check of an untouched log: %+v", before)
	}
	d.cmd.Process.Signal(syscall.SIGTERM) // shutting down signs a checkpoint of the head
	d.wait()

	editRecord(t, dir, 2)
	d2 := start(t, dir)
	var v api.AuditVerification
	d2.call(token, "GET", "/v1/audit/verify", nil, &v)
	if !v.OK || v.Full || v.FromSeq < before.HeadSeq || v.Checkpoint == nil || !v.Checkpoint.OK {
		t.Fatalf("the check from the newest checkpoint: %+v %+v", v, v.Checkpoint)
	}
	if v.Checked > v.HeadSeq-v.FromSeq {
		t.Errorf("it checked %d records, more than the %d after the checkpoint", v.Checked, v.HeadSeq-v.FromSeq)
	}
	var full api.AuditVerification
	d2.call(token, "GET", "/v1/audit/verify?full=true", nil, &full)
	if full.OK || !full.Full || full.BrokenAt != 2 || !strings.Contains(full.Problem, "edited") {
		t.Fatalf("the full check of an edited log: %+v", full)
	}
	if code := d2.call(token, "GET", "/v1/audit/verify?full=maybe", nil, nil); code != 400 {
		t.Errorf("full=maybe answered %d, want 400", code)
	}
}

// editRecord changes the body of audit record seq in the stopped
// daemon's store, keeping the hash it has stored: a quiet edit by someone
// holding the store key (key layout: daemon/store/keys.go).
func editRecord(t *testing.T, dir string, seq uint64) {
	t.Helper()
	hexKey, err := os.ReadFile(filepath.Join(dir, "keys", "store.key"))
	if err != nil {
		t.Fatal(err)
	}
	key, err := hex.DecodeString(strings.TrimSpace(string(hexKey)))
	if err != nil {
		t.Fatal(err)
	}
	db, err := badger.Open(badger.DefaultOptions(filepath.Join(dir, "store")).WithEncryptionKey(key).
		WithIndexCacheSize(1 << 20).WithLoggingLevel(badger.ERROR).WithMemTableSize(16 << 20))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	k := binary.BigEndian.AppendUint64([]byte("L/"), seq)
	err = db.Update(func(txn *badger.Txn) error {
		item, err := txn.Get(k)
		if err != nil {
			return err
		}
		rec, err := item.ValueCopy(nil)
		if err != nil {
			return err
		}
		body := rec[8+64:] // seq, previous hash, hash, then the event
		edited := strings.Replace(string(body), `"action":"`, `"action":"edited.`, 1)
		if edited == string(body) {
			t.Fatalf("record %d has no action: %s", seq, body)
		}
		return txn.Set(k, append(rec[:8+64:8+64], edited...))
	})
	if err != nil {
		t.Fatal(err)
	}
}
