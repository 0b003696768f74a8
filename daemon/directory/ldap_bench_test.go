package directory_test

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/core"
	"github.com/keyfleet/keyfleet/daemon/core/coretest"
	"github.com/keyfleet/keyfleet/daemon/directory"
	dt "github.com/keyfleet/keyfleet/daemon/directory/directorytest"
	"github.com/keyfleet/keyfleet/daemon/runtimemem"
	"github.com/keyfleet/keyfleet/daemon/seal"
	"github.com/keyfleet/keyfleet/daemon/store"
	"github.com/keyfleet/keyfleet/plugins/sdk"
)

// BenchmarkLDAPFullSync is a first full sync end to end: 100,000 users
// (all in one group, some in nested groups; KEYFLEET_BENCH_USERS for
// another number) read from a real slapd over StartTLS, 500 to a page,
// and applied to an empty Badger store on disk. It reports what the
// syncer keeps of the directory between syncs (the base of the next
// incremental read), per user: rest-B/user, the live heap with the
// syncer less the live heap once it is dropped. With
// KEYFLEET_BENCH_HEAPPROFILE=file it writes a heap profile taken while
// the syncer is still held.
func BenchmarkLDAPFullSync(b *testing.B) {
	b.Cleanup(runtimemem.Set(runtimemem.DefaultStoreMemory, os.Getenv)) // keyfleetd's collector settings (bench_test.go)
	n := ldapBenchSize()
	srv := dt.Start(b, dt.Organisation(n, false))
	cfg := directory.LDAPConfig{
		Name: "corp", URL: srv.URL, StartTLS: true, CAFile: srv.CAFile, BindDN: dt.ReaderDN, BindPasswordFile: srv.PasswordFile,
		UserBase: dt.People, GroupBase: dt.Groups,
		Groups: map[string]string{dt.GroupDN("eng"): "eng", dt.GroupDN("all-staff"): "staff"},
	}
	var rest, gcs, kept int64
	for range b.N {
		b.StopTimer()
		st, err := store.Open(store.Options{Dir: b.TempDir(), EncryptionKey: make([]byte, 32)})
		if err != nil {
			b.Fatal(err)
		}
		sl, _ := seal.New(make([]byte, 32))
		svc, err := core.New(core.Config{Store: st, Sealer: sl, Kinds: []sdk.Factor{coretest.Kind{}}})
		if err != nil {
			b.Fatal(err)
		}
		s, err := directory.NewSyncer(cfg, svc, directory.Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		gc0 := gcCycles()
		rep, err := s.Sync(context.Background(), api.DirectorySync{})
		gcs += gcCycles() - gc0
		kept += rep.MemoryBytes
		if err != nil || rep.Created < n {
			b.Fatalf("sync: %d created, %v", rep.Created, err)
		}
		b.StopTimer()
		st.Close() // Badger's work in the background would blur the figure
		held := liveHeap()
		if f := os.Getenv("KEYFLEET_BENCH_HEAPPROFILE"); f != "" {
			writeHeapProfile(b, f)
		}
		runtime.KeepAlive(s)
		s = nil
		rest += held - liveHeap()
		b.StartTimer()
	}
	b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "users/s")
	b.ReportMetric(float64(rest)/float64(b.N*n), "rest-B/user")
	b.ReportMetric(float64(gcs)/float64(b.N), "GCs/sync")
	b.ReportMetric(float64(kept)/float64(b.N*n), "reported-B/user") // what the sync report says (MemoryBytes)
}

// gcCycles is how many collections the process has run.
func gcCycles() int64 {
	s := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}}
	metrics.Read(s)
	return int64(s[0].Value.Uint64())
}

// ldapBenchSize is 100,000 users, or KEYFLEET_BENCH_USERS.
func ldapBenchSize() int {
	if n, err := strconv.Atoi(os.Getenv("KEYFLEET_BENCH_USERS")); err == nil && n > 0 {
		return n
	}
	return 100_000
}

// liveHeap is the heap's live bytes after a collection.
func liveHeap() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

// writeHeapProfile writes the live heap's profile to name.
func writeHeapProfile(b *testing.B, name string) {
	f, err := os.Create(name)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkLDAPIncrementalSync is an incremental sync end to end after
// 100 users changed in a directory of 100,000 (a real slapd, their
// names (cn) changed with ldapmodify before each sync).
func BenchmarkLDAPIncrementalSync(b *testing.B) {
	b.Cleanup(runtimemem.Set(runtimemem.DefaultStoreMemory, os.Getenv)) // keyfleetd's collector settings (bench_test.go)
	const n, k = 100_000, 100
	srv := dt.Start(b, dt.Organisation(n, false))
	st, err := store.Open(store.Options{Dir: b.TempDir(), EncryptionKey: make([]byte, 32)})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	sl, _ := seal.New(make([]byte, 32))
	svc, err := core.New(core.Config{Store: st, Sealer: sl, Kinds: []sdk.Factor{coretest.Kind{}}})
	if err != nil {
		b.Fatal(err)
	}
	s, err := directory.NewSyncer(directory.LDAPConfig{
		Name: "corp", URL: srv.URL, StartTLS: true, CAFile: srv.CAFile, BindDN: dt.ReaderDN, BindPasswordFile: srv.PasswordFile,
		UserBase: dt.People, GroupBase: dt.Groups, Groups: map[string]string{dt.GroupDN("eng"): "eng", dt.GroupDN("all-staff"): "staff"},
	}, svc, directory.Options{})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := s.Sync(context.Background(), api.DirectorySync{}); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		var ldif strings.Builder
		for j := range k {
			fmt.Fprintf(&ldif, "dn: %s\nchangetype: modify\nreplace: cn\ncn: Staff %d round %d\n\n", dt.PersonDN(dt.BigUID(1+(i*k+j*997)%n)), j, i)
		}
		srv.Modify(b, ldif.String())
		b.StartTimer()
		rep, err := s.Sync(context.Background(), api.DirectorySync{Incremental: true})
		if err != nil || rep.Mode != api.SyncIncremental || rep.Updated < k {
			b.Fatalf("incremental sync: %s, %d updated, %v", rep.Mode, rep.Updated, err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/sync")
}
