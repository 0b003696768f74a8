package postgres_test

import (
	"bytes"
	"context"
	"encoding/base32"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/core"
	"github.com/keyfleet/keyfleet/daemon/core/coretest"
	"github.com/keyfleet/keyfleet/daemon/seal"
	"github.com/keyfleet/keyfleet/daemon/store/postgres"
	"github.com/keyfleet/keyfleet/plugins/sdk"
)

// TestADumpRevealsNoNamesSeedsOrTokens: someone with a pg_dump of the
// database (a stolen backup, a curious DBA) reads no username, email,
// display name, seed or token secret in it.
func TestADumpRevealsNoNamesSeedsOrTokens(t *testing.T) {
	dsn := cluster.Database(t)
	st, err := postgres.Open(context.Background(), postgres.Options{DSN: dsn, StoreKey: storeKey})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	sl, _ := seal.New(bytes.Repeat([]byte{0x17}, 32))
	svc, err := core.New(core.Config{Store: st, Sealer: sl, Kinds: []sdk.Factor{coretest.Kind{}}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	_, secret, err := svc.Bootstrap(ctx, []string{"founder-zelda"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	u, _, err := svc.CreateUser(ctx, core.System, api.CreateUser{Username: "wilhelmina.quast", DisplayName: "Wilhelmina Quast", Email: "wq@secret-corp.example"})
	if err != nil {
		t.Fatal(err)
	}
	seed := "SEEDVALUE-7f3a9c"
	e, _, err := svc.CreateEnrolment(ctx, core.System, api.CreateEnrolment{User: u.ID, Kind: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.CompleteEnrolment(ctx, core.System, e.ID, api.CompleteEnrolment{Payload: coretest.EnrolPayload(e.Challenge, seed, "SN-1")}); err != nil {
		t.Fatal(err)
	}
	dump, err := cluster.Dump(dbName(dsn))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(dump, []byte("COPY public.users")) {
		t.Fatal("the dump has no users table: the test reads the wrong database")
	}
	for _, s := range []string{"wilhelmina", "Wilhelmina Quast", "secret-corp", "founder-zelda", seed,
		base32.StdEncoding.EncodeToString([]byte(seed)), secret, strings.SplitN(secret, "_", 3)[len(strings.SplitN(secret, "_", 3))-1]} {
		if bytes.Contains(bytes.ToLower(dump), bytes.ToLower([]byte(s))) {
			t.Errorf("the dump contains %q in plain text", s)
		}
	}
}

func dbName(dsn string) string {
	u, _ := url.Parse(dsn)
	return strings.TrimPrefix(u.Path, "/")
}
