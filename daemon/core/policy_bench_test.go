package core_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/attest"
	"github.com/keyfleet/keyfleet/daemon/core"
	"github.com/keyfleet/keyfleet/daemon/store"
)

const benchUsers, benchFactors = 10_000, 3

// benchPopulation writes n users with 3 factors each straight into the
// store (the service would take minutes), a third of them engineers, with
// evidence the size of a real PIV attestation (two certificates).
func benchPopulation(b *testing.B, e *env, n int) {
	b.Helper()
	ev := attest.Evidence{Format: "piv", Vendor: "Yubico", Model: "YubiKey 5", Serial: 1, Firmware: "5.7.4",
		KeyAlgorithm: "EC-P256", PINPolicy: "once", TouchPolicy: "always", AttestationType: attest.AttestationBasic,
		PublicKey: make([]byte, 91), Chain: [][]byte{make([]byte, 700), make([]byte, 800)}}
	evJSON, _ := json.Marshal(ev)
	now := e.clock.Now()
	for i := 0; i < n; i += 500 {
		err := e.st.Update(context.Background(), func(tx core.Tx) error {
			for j := i; j < min(i+500, n); j++ {
				u := core.User{ID: fmt.Sprintf("usr_bench%08d", j), Username: fmt.Sprintf("user%08d", j), Kind: api.KindPerson,
					Status: api.UserActive, Roles: []string{api.RoleUser}, Groups: []string{[]string{"eng", "sales", "ops"}[j%3]}, CreatedAt: now}
				if err := tx.InsertUser(u); err != nil {
					return err
				}
				for k := range benchFactors {
					f := core.Factor{ID: fmt.Sprintf("fac_bench%08d%d", j, k), UserID: u.ID, Kind: "hwkey", State: api.FactorActive,
						CreatedAt: now, ActivatedAt: &now, Evidence: evJSON, Public: json.RawMessage(`{"alg":"test"}`)}
					if err := tx.PutFactor(f); err != nil {
						return err
					}
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

// newBenchEnv opens an encrypted store on disk and fills it.
func newBenchEnv(b *testing.B) *env {
	b.Helper()
	st, err := store.Open(store.Options{Dir: b.TempDir(), EncryptionKey: make([]byte, 32)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	e := policyEnvOn(b, st)
	benchPopulation(b, e, benchUsers)
	return e
}

// proven is the admin with the fresh proof of their key that applying doc
// needs.
func (e *env) proven(doc string) core.Principal {
	return e.people.Prove(e.admin, "policy.apply", "", api.PolicyDocument{Document: doc})
}

// BenchmarkReevaluate measures the bulk re-evaluation that follows a
// policy apply: every user read from the encrypted on-disk store,
// evaluated, and (the first time) their first-applied times written with
// an audit event each.
func BenchmarkReevaluate(b *testing.B) {
	ctx := context.Background()
	b.Run("first/10k-users-3-factors", func(b *testing.B) {
		for range b.N {
			b.StopTimer()
			e := newBenchEnv(b)
			if _, err := e.svc.ApplyPolicy(ctx, e.proven(strictPolicy), api.PolicyDocument{Document: strictPolicy}); err != nil {
				b.Fatal(err)
			}
			e.svc.Reevaluate(ctx, e.admin) // warm the policy cache; nothing new to record
			// A new rule starts a deadline for everyone again.
			doc := strictPolicy + "  - name: all2\n    match: {everyone: true}\n"
			b.StartTimer()
			out, err := e.svc.ApplyPolicy(ctx, e.proven(doc), api.PolicyDocument{Document: doc})
			if err != nil || out.Reevaluation.Started < benchUsers {
				b.Fatalf("%+v %v", out.Reevaluation, err)
			}
		}
		b.ReportMetric(float64(b.N*benchUsers)/b.Elapsed().Seconds(), "users/s")
	})
	b.Run("steady/10k-users-3-factors", func(b *testing.B) {
		e := newBenchEnv(b)
		if _, err := e.svc.ApplyPolicy(ctx, e.proven(strictPolicy), api.PolicyDocument{Document: strictPolicy}); err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		for range b.N {
			out, err := e.svc.Reevaluate(ctx, e.admin)
			if err != nil || out.Users < benchUsers || out.Started != 0 {
				b.Fatalf("%+v %v", out, err)
			}
		}
		b.ReportMetric(float64(b.N*benchUsers)/b.Elapsed().Seconds(), "users/s")
	})
	b.Run("dry-run/10k-users-3-factors", func(b *testing.B) {
		e := newBenchEnv(b)
		if _, err := e.svc.ApplyPolicy(ctx, e.proven(strictPolicy), api.PolicyDocument{Document: strictPolicy}); err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		for range b.N {
			if _, err := e.svc.DryRunPolicy(ctx, e.admin, api.PolicyDocument{Document: stricterPolicy}); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N*benchUsers)/b.Elapsed().Seconds(), "users/s")
	})
}
