package store

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/attest"
	"github.com/keyfleet/keyfleet/daemon/core"
	"github.com/keyfleet/keyfleet/policy"
)

func TestFactorFactsSurviveTheirEncoding(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 30, 0, 123, time.UTC)
	t1 := t0.Add(time.Hour)
	for _, tc := range []struct {
		name string
		f    core.FactorFacts
	}{
		{"a pending factor with no evidence", core.FactorFacts{Kind: "totp", State: "pending", CreatedAt: t0}},
		{"a factor with a zero creation time", core.FactorFacts{Kind: "totp", State: "active"}},
		{"a TOTP factor with its parameters", core.FactorFacts{Kind: "totp", State: "active", CreatedAt: t0,
			Params: map[string]string{"algorithm": "SHA256", "digits": "8", "period": "60"}}},
		{"an active key used since", core.FactorFacts{Kind: "piv", State: "active", CreatedAt: t0, ActivatedAt: &t0, LastUsedAt: &t1,
			Evidence: &attest.Evidence{Format: "piv", Vendor: "Yubico", Model: "YubiKey 5 FIPS", Serial: 4_000_000_001,
				Firmware: "5.4.3", FormFactor: "USB-C Nano", FIPS: true, PINPolicy: "once", TouchPolicy: "cached",
				KeyAlgorithm: "EC-P384", AttestationType: attest.AttestationBasic,
				Advisories: []attest.Advisory{{ID: "YSA-2024-03", Summary: "EUCLEAK"}}}}},
		{"a FIDO2 key with an attested AAGUID", core.FactorFacts{Kind: "fido2", State: "suspended", CreatedAt: t0,
			Evidence: &attest.Evidence{Format: "packed", AAGUID: "ee882879-721c-4913-9775-3dfcce97072a", AAGUIDAttested: true,
				AttestationType: "basic", KeyAlgorithm: "EC-P256"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newFactsDecoder()
			d.reset(encodeFactorFacts(tc.f))
			got := d.factorFacts(tc.f.ID)
			if d.err != nil || !reflect.DeepEqual(got, tc.f) {
				t.Fatalf("decoded %+v (%v), want %+v", got, d.err, tc.f)
			}
		})
	}
}

func TestADamagedFactsRecordIsAnError(t *testing.T) {
	good := encodeUserFacts(core.UserFacts{ID: "usr_1", Username: "ann", Groups: []string{"eng"}})
	for _, tc := range []struct {
		name string
		v    []byte
	}{
		{"an empty record", nil},
		{"a record of an unknown format", append([]byte{9}, good[1:]...)},
		{"a truncated record", good[:len(good)-2]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fb := &factsBundle{uid: "usr_1"}
			fb.add(tagUser, []byte("usr_1"), tc.v)
			if _, err := fb.Facts(); !errors.Is(err, errFacts) {
				t.Fatalf("Facts() = %v, want errFacts", err)
			}
		})
	}
}

// factsFromRecords builds what the pf/ index must hold from the records
// it copies, through the typed methods.
func factsFromRecords(t *testing.T, st *Store) []core.PolicyFacts {
	t.Helper()
	var out []core.PolicyFacts
	err := st.View(context.Background(), func(tx core.ReadTx) error {
		for after := ""; ; {
			users, next, err := tx.Users(core.UserFilter{}, core.PageReq{After: after, Limit: core.MaxPageSize})
			if err != nil {
				return err
			}
			for _, u := range users {
				out = append(out, subjectFacts(t, tx, u))
			}
			if after = next; next == "" {
				break
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sortFacts(out)
	return out
}

func subjectFacts(t *testing.T, tx core.ReadTx, u core.User) core.PolicyFacts {
	t.Helper()
	pf := core.PolicyFacts{User: core.UserFactsOf(u)}
	fs, _, err := tx.Factors(core.FactorFilter{UserID: u.ID}, core.PageReq{Limit: core.MaxPageSize})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fs {
		pf.Factors = append(pf.Factors, core.FactsOf(f))
	}
	if pf.FirstApplied, err = tx.FirstApplied(u.ID); err != nil {
		t.Fatal(err)
	}
	xs, err := tx.Exemptions(u.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range xs {
		pf.Exemptions = append(pf.Exemptions, policy.Exemption{UserID: x.UserID, Reason: x.Reason, Until: x.Until})
	}
	return pf
}

// scanFacts reads the index.
func scanFacts(t *testing.T, st *Store) []core.PolicyFacts {
	t.Helper()
	var out []core.PolicyFacts
	err := st.View(context.Background(), func(tx core.ReadTx) error {
		return tx.ScanPolicyFacts("", func(r core.PolicyFactsRecord) error {
			f, err := r.Facts()
			out = append(out, f)
			return err
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// sortFacts orders users by id (the scan's order) and normalises what
// the two readings may spell differently: empty versus nil, time zones.
func sortFacts(fs []core.PolicyFacts) {
	for i := range fs {
		f := &fs[i]
		if len(f.FirstApplied) == 0 {
			f.FirstApplied = nil
		}
		for k, v := range f.FirstApplied {
			f.FirstApplied[k] = v.UTC()
		}
		f.User.CreatedAt = f.User.CreatedAt.UTC()
	}
	for i := 1; i < len(fs); i++ {
		for j := i; j > 0 && fs[j].User.ID < fs[j-1].User.ID; j-- {
			fs[j], fs[j-1] = fs[j-1], fs[j]
		}
	}
}

// populate creates users, factors, first-applied times and exemptions,
// and deletes some of each.
func populate(t *testing.T, st *Store, svc *core.Service) {
	t.Helper()
	ctx := context.Background()
	for _, name := range []string{"ann", "bob", "cy", "dee"} {
		if _, _, err := svc.CreateUser(ctx, admin, api.CreateUser{Username: name, Groups: []string{"eng"}}); err != nil {
			t.Fatal(err)
		}
	}
	enrolSeed(t, svc, "ann", "JBSWY3DPEHPK3PXP", "1001")
	gone := enrolSeed(t, svc, "bob", "JBSWY3DPEHPK3PXQ", "1002")
	enrolSeed(t, svc, "bob", "JBSWY3DPEHPK3PXR", "1003")
	enrolSeed(t, svc, "dee", "JBSWY3DPEHPK3PXS", "1004")
	until := time.Now().Add(48 * time.Hour).UTC()
	err := st.Update(ctx, func(tx core.Tx) error {
		f, err := tx.Factor(gone.ID)
		if err != nil {
			return err
		}
		if err := tx.DeleteFactor(f); err != nil {
			return err
		}
		for _, name := range []string{"ann", "cy", "dee"} {
			u, err := tx.UserByName(name)
			if err != nil {
				return err
			}
			if err := tx.PutFirstApplied(u.ID, map[string]time.Time{"everyone": until.Add(-time.Hour)}); err != nil {
				return err
			}
			if err := tx.PutExemption(core.Exemption{ID: "apr_" + name, UserID: u.ID, Reason: "travel", Until: until}); err != nil {
				return err
			}
		}
		cy, _ := tx.UserByName("cy")
		return tx.DeletePolicyState(cy.ID)
	})
	if err != nil {
		t.Fatal(err)
	}
	// Delete dee as core's deleteUser does (after its approval).
	err = st.Update(ctx, func(tx core.Tx) error {
		dee, err := tx.UserByName("dee")
		if err != nil {
			return err
		}
		fs, _, err := tx.Factors(core.FactorFilter{UserID: dee.ID}, core.PageReq{})
		for _, f := range fs {
			if err := tx.DeleteFactor(f); err != nil {
				return err
			}
		}
		if err := tx.DeletePolicyState(dee.ID); err != nil {
			return err
		}
		return tx.DeleteUser(dee)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestThePolicyFactsIndexFollowsTheRecords(t *testing.T) {
	st, svc := openAt(t, t.TempDir(), nil)
	defer st.Close()
	populate(t, st, svc)
	want, got := factsFromRecords(t, st), scanFacts(t, st)
	sortFacts(got)
	if len(want) != 3 || !reflect.DeepEqual(got, want) {
		t.Fatalf("the index holds\n%+v\nthe records say\n%+v", got, want)
	}
}

func TestOpeningASchema1StoreBuildsThePolicyFactsIndex(t *testing.T) {
	dir := t.TempDir()
	st, svc := openAt(t, dir, nil)
	populate(t, st, svc)
	want := factsFromRecords(t, st)
	// Make it a store written by a keyfleetd without the index, with a
	// stray record from a build cut short.
	writeFirstAppliedRecords(t, st)
	if err := st.db.DropPrefix([]byte(pPolicyFacts)); err != nil {
		t.Fatal(err)
	}
	err := st.db.Update(func(txn *badger.Txn) error {
		if err := txn.Set(userFactsKey("usr_stray"), []byte{factsFormat}); err != nil {
			return err
		}
		return txn.Set([]byte(kSchema), []byte("1"))
	})
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	st, _ = openAt(t, dir, nil)
	defer st.Close()
	got := scanFacts(t, st)
	sortFacts(got)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("after the upgrade the index holds\n%+v\nthe records say\n%+v", got, want)
	}
	if v, err := st.schema(); err != nil || v != schemaVersion {
		t.Fatalf("schema %q, %v; want %s", v, err, schemaVersion)
	}
	if fa := keysUnder(t, st, pFirstApplied); len(fa) != 0 {
		t.Fatalf("first-applied records left after the upgrade: %q", fa)
	}
}

// writeFirstAppliedRecords writes the first-applied records (fa/, JSON)
// that schema 4 and older kept besides their copy in the policy facts.
func writeFirstAppliedRecords(t *testing.T, st *Store) {
	t.Helper()
	err := st.db.Update(func(txn *badger.Txn) error {
		return scanPrefix(txn, []byte(pPolicyFacts), true, func(item *badger.Item) error {
			userID, rest, _ := strings.Cut(string(item.Key()[len(pPolicyFacts):]), "\x00")
			if rest != string(tagFirstApplied) {
				return nil
			}
			v, err := item.ValueCopy(nil)
			if err != nil {
				return err
			}
			m, err := decodeFirstApplied(v)
			if err != nil {
				return err
			}
			b, _ := json.Marshal(m)
			return txn.Set(key(pFirstApplied, userID), b)
		})
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A store of schema 4 keeps first-applied times twice, in fa/ (JSON) and
// in the policy facts: opening it keeps them in the policy facts only,
// copied from fa/ (a different time there wins), and reads and exports
// the same times. A schema-5 store where an upgrade cut short left fa/
// records loses them at the next open.
func TestOpeningASchema4StoreKeepsFirstAppliedTimesOnlyInThePolicyFacts(t *testing.T) {
	dir := t.TempDir()
	st, svc := openAt(t, dir, nil)
	populate(t, st, svc)
	writeFirstAppliedRecords(t, st)
	fa := keysUnder(t, st, pFirstApplied)
	if len(fa) != 1 { // ann: cy's were deleted, dee is gone, bob has none
		t.Fatalf("first-applied records %q; want ann's", fa)
	}
	annID := fa[0][len(pFirstApplied):]
	later := time.Date(2030, 1, 2, 3, 4, 5, 6, time.UTC)
	err := st.db.Update(func(txn *badger.Txn) error {
		b, _ := json.Marshal(map[string]time.Time{"everyone": later})
		if err := txn.Set(key(pFirstApplied, annID), b); err != nil {
			return err
		}
		return txn.Set([]byte(kSchema), []byte("4"))
	})
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	st, _ = openAt(t, dir, nil)
	if fa := keysUnder(t, st, pFirstApplied); len(fa) != 0 {
		t.Fatalf("first-applied records left after the upgrade: %q", fa)
	}
	check := func() {
		t.Helper()
		st.View(context.Background(), func(tx core.ReadTx) error {
			m, err := tx.FirstApplied(annID)
			if err != nil || len(m) != 1 || !m["everyone"].Equal(later) {
				t.Errorf("ann's first-applied times %v, %v; want everyone at %s", m, err, later)
			}
			return nil
		})
		var exported []FirstApplied
		err := st.Export(func(v any) error {
			if x, ok := v.(FirstApplied); ok {
				exported = append(exported, x)
			}
			return nil
		})
		if err != nil || len(exported) != 1 || exported[0].UserID != annID || !exported[0].Times["everyone"].Equal(later) {
			t.Errorf("exported %+v, %v; want ann's", exported, err)
		}
	}
	check()
	err = st.db.Update(func(txn *badger.Txn) error { return txn.Set(key(pFirstApplied, "usr_stray"), []byte("{}")) })
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	st, _ = openAt(t, dir, nil)
	defer st.Close()
	if fa := keysUnder(t, st, pFirstApplied); len(fa) != 0 {
		t.Fatalf("first-applied records left at the open after an upgrade cut short: %q", fa)
	}
	check()
}
