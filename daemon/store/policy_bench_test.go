package store

import (
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/keyfleet/keyfleet/daemon/core"
	"github.com/keyfleet/keyfleet/daemon/store/storetest"
)

// BenchmarkBulkPolicy measures bulk evaluation from the encrypted store on
// disk (storetest.BulkPolicy, the same on PostgreSQL). It reports users/s
// and the Go heap in use before and at its peak.
func BenchmarkBulkPolicy(b *testing.B) {
	for _, n := range storetest.BenchSizes() {
		st, svc := benchStore(b, n)
		storetest.BulkPolicy(b, n, st, svc, nil)
	}
}

// benchStore opens an encrypted store on disk holding n users under
// storetest.BenchPolicy, written straight through Badger write batches
// (the API would take hours): the same records PutUser, PutFactor and
// PutFirstApplied write. With KEYFLEET_BENCH_KEEP the store is kept there
// and built only once.
func benchStore(b *testing.B, n int) (*Store, *core.Service) {
	b.Helper()
	dir, built := b.TempDir(), false
	if keep := storetest.BenchKeep(); keep != "" {
		dir = filepath.Join(keep, "badger-policy-"+strconv.Itoa(n))
		if _, err := os.Stat(filepath.Join(dir, "complete")); err == nil {
			built = true
		} else if err := os.RemoveAll(dir); err != nil {
			b.Fatal(err)
		}
	}
	st, err := Open(Options{Dir: dir, EncryptionKey: testKey})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	svc, err := storetest.BenchService(st, testKey, !built)
	if err != nil {
		b.Fatal(err)
	}
	if built {
		return st, svc
	}
	start := time.Now()
	if err := loadUsers(st, n); err != nil {
		b.Fatal(err)
	}
	b.Logf("wrote %d users in %s", n, time.Since(start).Round(time.Millisecond))
	if err := os.WriteFile(filepath.Join(dir, "complete"), nil, 0o600); err != nil {
		b.Fatal(err)
	}
	return st, svc
}

// loadUsers writes n users on every CPU into one write batch.
func loadUsers(st *Store, n int) error {
	wb := st.db.NewWriteBatch()
	defer wb.Cancel()
	workers := runtime.GOMAXPROCS(0)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n && errs[w] == nil; i += workers {
				errs[w] = putBenchUser(wb, i)
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return wb.Flush()
}

// putBenchUser writes storetest.BenchUser(i).
func putBenchUser(s setter, i int) error {
	u, factors, applied := storetest.BenchUser(i)
	if err := s.Set(key(pUsername, u.Username), []byte(u.ID)); err != nil {
		return err
	}
	if err := putUserRecords(s, u); err != nil {
		return err
	}
	for _, f := range factors {
		if err := putFactorRecords(s, f); err != nil {
			return err
		}
	}
	return putFirstAppliedRecords(s, u.ID, applied)
}
