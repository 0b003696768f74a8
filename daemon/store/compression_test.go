package store

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"

	"github.com/keyfleet/keyfleet/daemon/core"
)

// tableKinds counts the store's tables by how their blocks are
// compressed, as the MANIFEST records it.
func tableKinds(t *testing.T, dir string) map[options.CompressionType]int {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, badger.ManifestFilename))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, _, err := badger.ReplayManifestFile(f, 0, badger.DefaultOptions(dir))
	if err != nil {
		t.Fatal(err)
	}
	out := map[options.CompressionType]int{}
	for _, tm := range m.Tables {
		out[tm.Compression]++
	}
	return out
}

// usersByName reads every user named prefix0 .. prefix(n-1).
func usersByName(t *testing.T, st *Store, prefix string, n int) map[string]core.User {
	t.Helper()
	out := map[string]core.User{}
	err := st.View(context.Background(), func(tx core.ReadTx) error {
		for i := range n {
			u, err := tx.UserByName(fmt.Sprintf("%s%d", prefix, i))
			if err != nil {
				return err
			}
			out[u.Username] = u
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// A store whose tables were written without compression (before
// 2026-12-07) opens, passes the table check and reads the same with
// compressed tables written next to them, and after a compaction has
// rewritten them all.
func TestAStoreWrittenWithoutCompressionReadsTheSameWithCompressedTables(t *testing.T) {
	dir := t.TempDir()
	tableCompression = options.None
	t.Cleanup(func() { tableCompression = options.Snappy })
	st, err := Open(openOpts(dir))
	if err != nil {
		t.Fatal(err)
	}
	createUsers(t, serviceFor(t, st), "old", 600)
	before := usersByName(t, st, "old", 600)
	st.Close()
	if k := tableKinds(t, dir); k[options.None] == 0 || k[options.Snappy] != 0 {
		t.Fatalf("the old store's tables: %v", k)
	}

	tableCompression = options.Snappy
	st, err = Open(openOpts(dir))
	if err != nil {
		t.Fatalf("the old store does not open: %v", err)
	}
	createUsers(t, serviceFor(t, st), "new", 600)
	st.Close()
	if k := tableKinds(t, dir); k[options.None] == 0 || k[options.Snappy] == 0 {
		t.Fatalf("tables of both kinds expected: %v", k)
	}
	if _, err := checkFiles(openOpts(dir)); err != nil {
		t.Fatalf("the check of a store with tables of both kinds: %v", err)
	}
	st, err = Open(openOpts(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	after := usersByName(t, st, "old", 600)
	usersByName(t, st, "new", 600)
	for name, u := range before {
		if fmt.Sprint(after[name]) != fmt.Sprint(u) {
			t.Fatalf("%s reads differently:\n%+v\n%+v", name, after[name], u)
		}
	}
	if err := st.db.Flatten(1); err != nil {
		t.Fatal(err)
	}
	after = usersByName(t, st, "old", 600)
	for name, u := range before {
		if fmt.Sprint(after[name]) != fmt.Sprint(u) {
			t.Fatalf("%s reads differently after a compaction:\n%+v\n%+v", name, after[name], u)
		}
	}
}
