package directory_test

import (
	"context"
	"testing"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/core"
	"github.com/keyfleet/keyfleet/daemon/core/coretest"
	"github.com/keyfleet/keyfleet/daemon/directory"
	dt "github.com/keyfleet/keyfleet/daemon/directory/directorytest"
	"github.com/keyfleet/keyfleet/daemon/seal"
	"github.com/keyfleet/keyfleet/daemon/store"
	"github.com/keyfleet/keyfleet/plugins/sdk"
)

// BenchmarkLDAPFullSync is a first full sync end to end: 100,000 users
// (all in one group, some in nested groups) read from a real slapd over
// StartTLS, 500 to a page, and applied to an empty Badger store on disk.
func BenchmarkLDAPFullSync(b *testing.B) {
	const n = 100_000
	srv := dt.Start(b, dt.Organisation(n, false))
	cfg := directory.LDAPConfig{
		Name: "corp", URL: srv.URL, StartTLS: true, CAFile: srv.CAFile, BindDN: dt.ReaderDN, BindPasswordFile: srv.PasswordFile,
		UserBase: dt.People, GroupBase: dt.Groups,
		Groups: map[string]string{dt.GroupDN("eng"): "eng", dt.GroupDN("all-staff"): "staff"},
	}
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
		rep, err := s.Sync(context.Background(), api.DirectorySync{})
		if err != nil || rep.Created < n {
			b.Fatalf("sync: %d created, %v", rep.Created, err)
		}
		b.StopTimer()
		st.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "users/s")
}
