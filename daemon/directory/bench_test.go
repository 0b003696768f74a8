package directory

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/core"
	"github.com/keyfleet/keyfleet/daemon/core/coretest"
	"github.com/keyfleet/keyfleet/daemon/runtimemem"
	"github.com/keyfleet/keyfleet/daemon/seal"
	"github.com/keyfleet/keyfleet/daemon/store"
	"github.com/keyfleet/keyfleet/plugins/sdk"
)

// The sync's write side: entries already read (a reader in memory) going
// into a real Badger store on disk, each change with its audit events
// (user.create or user.update, policy.rules_applied), a batch per durable
// transaction. What reading them from slapd costs is measured by
// BenchmarkLDAPRead.

var benchUsers = benchSize()

// memReader is a directory in memory: n users in ten groups; changes
// returns the entries changed by the last call to change.
type memReader struct {
	entries []core.DirectoryEntry
	changed []core.DirectoryEntry
}

func newMemReader(n int) *memReader {
	r := &memReader{entries: make([]core.DirectoryEntry, n)}
	for i := range n {
		r.entries[i] = core.DirectoryEntry{ExternalID: fmt.Sprintf("%08x-0000-4000-8000-%012x", i, i), Username: fmt.Sprintf("user%06d", i),
			DisplayName: fmt.Sprintf("User %d", i), Email: fmt.Sprintf("user%06d@example.org", i),
			DN: fmt.Sprintf("uid=user%06d,ou=people,dc=example,dc=org", i), Groups: []string{fmt.Sprintf("team-%d", i%10)}}
		if i%7 == 0 {
			r.entries[i].Groups = append(r.entries[i].Groups, "oncall")
		}
	}
	return r
}

// change renames k users' display names (round is part of the name).
func (r *memReader) change(k, round int) {
	r.changed = r.changed[:0]
	for i := range k {
		j := (round*k + i*997) % len(r.entries)
		r.entries[j].DisplayName = fmt.Sprintf("User %d (round %d)", j, round)
		r.changed = append(r.changed, r.entries[j])
	}
}

func (r *memReader) full(context.Context) (read, error) {
	st := newDirState(false)
	for _, e := range r.entries {
		st.add(newDirUser(nil, e.ExternalID, "", "", "", "", false))
	}
	return read{entries: entrySlice(r.entries), cursor: "ts:20260101000000Z", full: true, state: st}, nil
}

func (r *memReader) changes(context.Context, string) (read, bool, error) {
	return read{entries: entrySlice(r.changed), cursor: "ts:20260101000000Z"}, true, nil
}

func (r *memReader) commit(read) {}

func benchSyncer(b testing.TB, rd reader) (*Syncer, *store.Store) {
	return memSyncer(b, rd, store.Options{})
}

// keyfleetdRuntime runs the rest of the benchmark with the collector's
// settings keyfleetd runs with at the default store.memory (GOGC 400, a
// memory limit of 320 MiB), the store's options being that size's
// defaults too; GOGC or GOMEMLIMIT in the environment win, as they do
// for keyfleetd (GOGC=100 GOMEMLIMIT=off: Go's defaults).
func keyfleetdRuntime(b testing.TB) {
	b.Cleanup(runtimemem.Set(runtimemem.DefaultStoreMemory, os.Getenv))
}

// memSyncer is a syncer of rd into a store on disk opened with o.
func memSyncer(b testing.TB, rd reader, o store.Options) (*Syncer, *store.Store) {
	b.Helper()
	o.Dir, o.EncryptionKey = b.TempDir(), make([]byte, 32)
	st, err := store.Open(o)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	sl, _ := seal.New(make([]byte, 32))
	svc, err := core.New(core.Config{Store: st, Sealer: sl, Kinds: []sdk.Factor{coretest.Kind{}}})
	if err != nil {
		b.Fatal(err)
	}
	doc := "version: 1\nrules:\n  - name: everyone\n    match: {everyone: true}\n    require: {min_factors: 1, enroll_within: 30d}\n" +
		"  - name: oncall\n    match: {groups: [oncall]}\n    require: {min_factors: 2, enroll_within: 14d}\n"
	if _, err := svc.ApplyPolicy(context.Background(), core.System, api.PolicyDocument{Document: doc}); err != nil {
		b.Fatal(err)
	}
	cfg := &LDAPConfig{Name: "corp", Groups: map[string]string{}}
	for i := range 10 {
		cfg.Groups[fmt.Sprintf("cn=team-%d,ou=groups,dc=example,dc=org", i)] = fmt.Sprintf("team-%d", i)
	}
	cfg.Groups["cn=oncall,ou=groups,dc=example,dc=org"] = "oncall"
	cfg.Defaults()
	cfg.Interval.Duration, cfg.FullInterval.Duration = time.Minute, time.Hour
	return newSyncer(cfg, svc, rd, Options{Now: time.Now}), st
}

// BenchmarkFullSync is a first full sync of 100,000 users into an empty
// store: every user created and audited, the policy's rules started for
// each (two audit events per user).
func BenchmarkFullSync(b *testing.B) {
	keyfleetdRuntime(b)
	rd := newMemReader(benchUsers)
	var elapsed time.Duration
	var peaks residentPeaks
	for range b.N {
		b.StopTimer()
		s, st := benchSyncer(b, rd)
		b.StartTimer()
		start := time.Now()
		stop := peaks.watch()
		rep, err := s.Sync(context.Background(), api.DirectorySync{})
		stop()
		elapsed += time.Since(start)
		if err != nil || rep.Created != benchUsers {
			b.Fatalf("sync: created %d, %v", rep.Created, err)
		}
		b.StopTimer()
		b.ReportMetric(float64(st.AuditHead().Seq)/float64(benchUsers), "events/user")
		st.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(b.N*benchUsers)/elapsed.Seconds(), "users/s")
	peaks.report(b)
}

// BenchmarkFullSyncUnchanged is the periodic full sync of the same
// 100,000 users: every entry compared, nothing written but the status.
func BenchmarkFullSyncUnchanged(b *testing.B) {
	keyfleetdRuntime(b)
	rd := newMemReader(benchUsers)
	s, _ := benchSyncer(b, rd)
	if _, err := s.Sync(context.Background(), api.DirectorySync{}); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		rep, err := s.Sync(context.Background(), api.DirectorySync{})
		if err != nil || rep.Unchanged != benchUsers {
			b.Fatalf("sync: %d unchanged, %v", rep.Unchanged, err)
		}
	}
	b.ReportMetric(float64(b.N*benchUsers)/b.Elapsed().Seconds(), "users/s")
}

// BenchmarkIncrementalSync is an incremental sync of 100 changed users in
// a store of 100,000.
func BenchmarkIncrementalSync(b *testing.B) {
	keyfleetdRuntime(b)
	rd := newMemReader(benchUsers)
	s, _ := benchSyncer(b, rd)
	if _, err := s.Sync(context.Background(), api.DirectorySync{}); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		rd.change(100, i)
		b.StartTimer()
		rep, err := s.Sync(context.Background(), api.DirectorySync{Incremental: true})
		if err != nil || rep.Mode != api.SyncIncremental || rep.Updated != 100 {
			b.Fatalf("incremental sync: %s, %d updated, %v", rep.Mode, rep.Updated, err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/sync")
}

// benchSize is 100,000 users, or KEYFLEET_BENCH_USERS.
func benchSize() int {
	if n, err := strconv.Atoi(os.Getenv("KEYFLEET_BENCH_USERS")); err == nil && n > 0 {
		return n
	}
	return 100_000
}

// residentPeaks is the most resident memory the process had while
// watched, as the kernel counts it (/proc/self/status): anonymous (the Go
// heap, stacks) and file-backed (Badger's mapped logs and tables, clean
// once synced and taken back first when memory is short).
type residentPeaks struct{ anon, file int64 }

// watch samples every 20 ms until the returned func is called.
func (p *residentPeaks) watch() (stop func()) {
	done, finished := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			anon, file := residentNow()
			p.anon, p.file = max(p.anon, anon), max(p.file, file)
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() { close(done); <-finished }
}

// report adds the peaks in MiB (none where /proc is not there).
func (p *residentPeaks) report(b *testing.B) {
	if p.anon > 0 {
		b.ReportMetric(float64(p.anon)/(1<<20), "peak-anon-MiB")
		b.ReportMetric(float64(p.file)/(1<<20), "peak-file-MiB")
	}
}

// residentNow is RssAnon and RssFile of /proc/self/status in bytes.
func residentNow() (anon, file int64) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, 0
	}
	for line := range strings.Lines(string(b)) {
		name, v, ok := strings.Cut(line, ":")
		if !ok || (name != "RssAnon" && name != "RssFile") {
			continue
		}
		kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if name == "RssAnon" {
			anon = kb << 10
		} else {
			file = kb << 10
		}
	}
	return anon, file
}
