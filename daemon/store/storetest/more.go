package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/core"
)

var ctxb = context.Background()

func testTokensApprovals(t *testing.T, b Backend) {
	st := open(t, b)
	update(t, st, func(tx core.Tx) error {
		for i := range 5 {
			tok := core.Token{ID: fmt.Sprintf("tok_%d", i), UserID: fmt.Sprintf("u%d", i%2), Name: "t", Hash: []byte{byte(i)}, CreatedAt: t0}
			if err := tx.PutToken(tok); err != nil {
				return err
			}
			a := core.Approval{ID: fmt.Sprintf("apr_%d", i), Action: "factor.revoke", State: []string{api.ApprovalPending, "approved"}[i%2],
				RequestedBy: api.Actor{ID: fmt.Sprintf("r%d", i%3)}, RequestedAt: t0, ExpiresAt: t0.Add(time.Hour), Params: map[string]string{"a": "b"}}
			if err := tx.PutApproval(a); err != nil {
				return err
			}
		}
		return tx.DeleteToken(core.Token{ID: "tok_2", UserID: "u0"})
	})
	tid := func(x core.Token) string { return x.ID }
	aid := func(x core.Approval) string { return x.ID }
	view(t, st, func(tx core.ReadTx) error {
		if got := allPages(t, "tokens", func(p core.PageReq) ([]core.Token, string, error) {
			return tx.Tokens(core.TokenFilter{UserID: "u0"}, p)
		}, tid); !slices.Equal(got, []string{"tok_0", "tok_4"}) {
			t.Fatalf("u0's tokens: %v", got)
		}
		if got := allPages(t, "approvals", func(p core.PageReq) ([]core.Approval, string, error) {
			return tx.Approvals(core.ApprovalFilter{State: api.ApprovalPending}, p)
		}, aid); !slices.Equal(got, []string{"apr_0", "apr_2", "apr_4"}) {
			t.Fatalf("pending approvals: %v", got)
		}
		if got := allPages(t, "approvals", func(p core.PageReq) ([]core.Approval, string, error) {
			return tx.Approvals(core.ApprovalFilter{RequestedBy: "r0", State: api.ApprovalPending}, p)
		}, aid); !slices.Equal(got, []string{"apr_0"}) {
			t.Fatalf("r0's pending approvals: %v", got)
		}
		_, err := tx.Token("tok_2")
		wantNotFound(t, "deleted token", err)
		a, err := tx.Approval("apr_3")
		if err != nil || a.State != "approved" || a.Params["a"] != "b" {
			t.Fatalf("Approval = %+v, %v", a, err)
		}
		return nil
	})
}

func testVerifications(t *testing.T, b Backend) {
	st := open(t, b)
	v := core.Verification{ID: "ver_1", UserID: "u1", CreatedAt: t0, ExpiresAt: time.Now().Add(time.Minute).UTC().Truncate(time.Second),
		Factors: map[string]core.VerificationFactor{"fac_1": {Kind: "totp", Sealed: []byte("s")}}}
	update(t, st, func(tx core.Tx) error { return tx.PutVerification(v) })
	view(t, st, func(tx core.ReadTx) error {
		got, err := tx.Verification("ver_1")
		same(t, "Verification", got, v)
		return err
	})
	use := func() bool {
		var fresh bool
		update(t, st, func(tx core.Tx) error {
			var err error
			fresh, err = tx.UseVerification("ver_1", v.ExpiresAt)
			return err
		})
		return fresh
	}
	if !use() {
		t.Fatal("the first use of a verification is not fresh")
	}
	if use() {
		t.Fatal("a verification was used twice")
	}
	update(t, st, func(tx core.Tx) error { return tx.DeleteVerification(v) })
	view(t, st, func(tx core.ReadTx) error {
		_, err := tx.Verification("ver_1")
		wantNotFound(t, "deleted verification", err)
		return nil
	})
	// Racing finishes: exactly one is fresh.
	const racers = 8
	fresh := make(chan bool, racers)
	for range racers {
		go func() {
			var f bool
			err := st.Update(ctxb, func(tx core.Tx) error {
				var err error
				f, err = tx.UseVerification("ver_2", v.ExpiresAt)
				return err
			})
			fresh <- f && err == nil
		}()
	}
	n := 0
	for range racers {
		if <-fresh {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d of %d racing finishes were fresh, want 1", n, racers)
	}
}

func testPolicy(t *testing.T, b Backend) {
	st := open(t, b)
	view(t, st, func(tx core.ReadTx) error {
		n, err := tx.PolicyHead()
		if n != 0 || err != nil {
			t.Fatalf("PolicyHead of a new store = %d, %v", n, err)
		}
		fa, err := tx.FirstApplied("u1")
		if len(fa) != 0 || fa == nil || err != nil {
			t.Fatalf("FirstApplied of nobody = %v, %v; want an empty map", fa, err)
		}
		xs, err := tx.Exemptions("u1")
		if len(xs) != 0 || err != nil {
			t.Fatalf("Exemptions of nobody = %v, %v", xs, err)
		}
		return nil
	})
	for v := 1; v <= 12; v++ {
		update(t, st, func(tx core.Tx) error {
			return tx.InsertPolicyVersion(core.PolicyVersion{Version: v, Document: "doc", AppliedAt: t0})
		})
	}
	err := st.Update(ctxb, func(tx core.Tx) error { return tx.InsertPolicyVersion(core.PolicyVersion{Version: 3}) })
	if !errors.Is(err, core.ErrAlreadyExists) {
		t.Fatalf("a second version 3: %v", err)
	}
	update(t, st, func(tx core.Tx) error {
		if err := tx.PutPolicyDraft(core.PolicyDraft{ApprovalID: "apr_1", Document: "weaker"}); err != nil {
			return err
		}
		if err := tx.PutPolicyDraft(core.PolicyDraft{ApprovalID: "apr_2", Document: "weaker"}); err != nil {
			return err
		}
		if err := tx.DeletePolicyDraft("apr_2"); err != nil {
			return err
		}
		if err := tx.PutFirstApplied("u1", map[string]time.Time{"mfa": t0}); err != nil {
			return err
		}
		for _, id := range []string{"apr_9", "apr_5"} {
			if err := tx.PutExemption(core.Exemption{ID: id, UserID: "u1", Reason: "leave", Until: t0.Add(time.Hour), CreatedAt: t0}); err != nil {
				return err
			}
		}
		return tx.PutExemption(core.Exemption{ID: "apr_7", UserID: "u2", Reason: "x", Until: t0})
	})
	vnum := func(v core.PolicyVersion) string { return fmt.Sprint(v.Version) }
	view(t, st, func(tx core.ReadTx) error {
		n, _ := tx.PolicyHead()
		if n != 12 {
			t.Fatalf("PolicyHead = %d, want 12", n)
		}
		if got := allPages(t, "versions", tx.PolicyVersions, vnum); len(got) != 12 || got[0] != "1" || got[11] != "12" {
			t.Fatalf("versions: %v", got)
		}
		if _, err := tx.PolicyDraft("apr_1"); err != nil {
			t.Fatal(err)
		}
		_, err := tx.PolicyDraft("apr_2")
		wantNotFound(t, "deleted draft", err)
		fa, _ := tx.FirstApplied("u1")
		same(t, "FirstApplied", fa, map[string]time.Time{"mfa": t0})
		xs, _ := tx.Exemptions("u1")
		if len(xs) != 2 || xs[0].ID != "apr_5" || xs[1].ID != "apr_9" {
			t.Fatalf("Exemptions in id order: %+v", xs)
		}
		return nil
	})
	update(t, st, func(tx core.Tx) error { return tx.DeletePolicyState("u1") })
	view(t, st, func(tx core.ReadTx) error {
		fa, _ := tx.FirstApplied("u1")
		xs, _ := tx.Exemptions("u1")
		others, _ := tx.Exemptions("u2")
		if len(fa) != 0 || len(xs) != 0 || len(others) != 1 {
			t.Fatalf("after DeletePolicyState(u1): %v %v; u2's %v", fa, xs, others)
		}
		return nil
	})
}

func testPolicyFacts(t *testing.T, b Backend) {
	st := open(t, b)
	users := []core.User{userN(3, "c"), userN(1, "a"), userN(2, "b")}
	users[1].Groups = []string{"eng"}
	update(t, st, func(tx core.Tx) error {
		for i, u := range users {
			if err := tx.InsertUser(u); err != nil {
				return err
			}
			if err := tx.PutFactor(factorN(10+i, u.ID, "", "active", "totp")); err != nil {
				return err
			}
		}
		if err := tx.PutFirstApplied(users[1].ID, map[string]time.Time{"r": t0}); err != nil {
			return err
		}
		return tx.PutExemption(core.Exemption{ID: "apr_1", UserID: users[1].ID, Reason: "why", Until: t0})
	})
	update(t, st, func(tx core.Tx) error { return tx.DeleteUser(users[2]) }) // b: its factor's facts stay, unseen
	scan := func(after string) []core.PolicyFacts {
		var out []core.PolicyFacts
		view(t, st, func(tx core.ReadTx) error {
			return tx.ScanPolicyFacts(after, func(r core.PolicyFactsRecord) error {
				f, err := r.Facts()
				out = append(out, f)
				return err
			})
		})
		return out
	}
	all := scan("")
	if len(all) != 2 || all[0].User.Username != "a" || all[1].User.Username != "c" {
		t.Fatalf("ScanPolicyFacts: %+v", all)
	}
	a := all[0]
	if len(a.Factors) != 1 || a.Factors[0].ID != factorN(11, "", "", "", "").ID || a.Factors[0].State != "active" ||
		!a.FirstApplied["r"].Equal(t0) || len(a.Exemptions) != 1 || a.Exemptions[0].Reason != "why" || !slices.Equal(a.User.Groups, []string{"eng"}) {
		t.Fatalf("a's facts: %+v", a)
	}
	if rest := scan(users[1].ID); len(rest) != 1 || rest[0].User.Username != "c" {
		t.Fatalf("ScanPolicyFacts after a: %+v", rest)
	}
	view(t, st, func(tx core.ReadTx) error {
		f, err := tx.UserPolicyFacts(users[0].ID)
		if err != nil || f.User.Username != "c" || len(f.Factors) != 1 {
			t.Fatalf("UserPolicyFacts(c) = %+v, %v", f, err)
		}
		_, err = tx.UserPolicyFacts(users[2].ID)
		wantNotFound(t, "facts of a deleted user", err)
		return nil
	})
	update(t, st, func(tx core.Tx) error { return tx.DeleteFactor(factorN(11, users[1].ID, "", "", "")) })
	if got := scan(""); len(got[0].Factors) != 0 {
		t.Fatalf("a deleted factor is still in the facts: %+v", got[0])
	}
}

func testRecovery(t *testing.T, b Backend) {
	st := open(t, b)
	update(t, st, func(tx core.Tx) error {
		for _, u := range []string{"u2", "u1"} {
			if err := tx.PutRecoveryCodes(core.RecoveryCodes{UserID: u, Salt: []byte("s"), Codes: []core.RecoveryCode{{Hash: []byte(u)}}, CreatedAt: t0}); err != nil {
				return err
			}
		}
		for i := range 4 {
			c := core.RecoveryCase{ID: fmt.Sprintf("rcv_%d", i), UserID: fmt.Sprintf("u%d", i%2), Username: "x", State: []string{api.CaseOpen, "closed"}[i/2], OpenedAt: t0, ExpiresAt: t0}
			if err := tx.PutRecoveryCase(c); err != nil {
				return err
			}
		}
		if err := tx.PutAccessPass(core.AccessPass{ID: "tap_1", UserID: "u1", Hash: bytes.Repeat([]byte{7}, 32), CreatedAt: t0, ExpiresAt: t0, UsesLeft: 1}); err != nil {
			return err
		}
		return tx.PutBreakGlass(core.BreakGlass{SetID: "set1", Verifier: []byte("v"), Shares: 5, Threshold: 3, CreatedAt: t0})
	})
	view(t, st, func(tx core.ReadTx) error {
		_, err := tx.BreakGlass()
		if err != nil {
			t.Fatal(err)
		}
		var seen []string
		tx.EachRecoveryCodes(func(rc core.RecoveryCodes) error { seen = append(seen, rc.UserID); return nil })
		if !slices.Equal(seen, []string{"u1", "u2"}) {
			t.Fatalf("EachRecoveryCodes: %v", seen)
		}
		rc, err := tx.RecoveryCodes("u2")
		if err != nil || string(rc.Codes[0].Hash) != "u2" {
			t.Fatalf("RecoveryCodes(u2) = %+v, %v", rc, err)
		}
		_, err = tx.RecoveryCodes("u3")
		wantNotFound(t, "codes of nobody", err)
		got := allPages(t, "cases", func(p core.PageReq) ([]core.RecoveryCase, string, error) {
			return tx.RecoveryCases(core.RecoveryFilter{UserID: "u1"}, p)
		}, func(c core.RecoveryCase) string { return c.ID })
		if !slices.Equal(got, []string{"rcv_1", "rcv_3"}) {
			t.Fatalf("u1's cases: %v", got)
		}
		open, _, _ := tx.RecoveryCases(core.RecoveryFilter{State: api.CaseOpen}, core.PageReq{Limit: 10})
		if len(open) != 2 {
			t.Fatalf("open cases: %+v", open)
		}
		p, err := tx.AccessPassByHash(bytes.Repeat([]byte{7}, 32))
		if err != nil || p.ID != "tap_1" {
			t.Fatalf("AccessPassByHash = %+v, %v", p, err)
		}
		_, err = tx.AccessPassByHash(bytes.Repeat([]byte{8}, 32))
		wantNotFound(t, "pass by an unknown hash", err)
		return nil
	})
	view(t, st, func(tx core.ReadTx) error {
		_, err := tx.AccessPass("tap_2")
		wantNotFound(t, "unknown pass", err)
		return nil
	})
}

// testTokenWithUser: the token and its user, read together, are what a
// snapshot holds at once, its latest version (a revocation shows at
// once), and a missing user is no error.
func testTokenWithUser(t *testing.T, b Backend) {
	st := open(t, b)
	r, ok := st.(core.TokenReader)
	if !ok {
		t.Fatalf("%T does not read a token with its user (core.TokenReader)", st)
	}
	ctx := context.Background()
	u := userN(1, "ada")
	u.Roles = []string{api.RoleAdmin}
	tok := core.Token{ID: "tok_a", UserID: u.ID, Name: "ci", Roles: []string{api.RoleAdmin}, Hash: []byte{1, 2, 3}, CreatedAt: t0}
	orphan := core.Token{ID: "tok_b", UserID: "u_gone", Name: "orphan", Hash: []byte{4}, CreatedAt: t0}
	update(t, st, func(tx core.Tx) error {
		if err := tx.InsertUser(u); err != nil {
			return err
		}
		if err := tx.PutToken(tok); err != nil {
			return err
		}
		return tx.PutToken(orphan)
	})
	gotT, gotU, err := r.TokenWithUser(ctx, "tok_a")
	if err != nil {
		t.Fatalf("TokenWithUser: %v", err)
	}
	same(t, "token", gotT, tok)
	if gotU.ID != u.ID || gotU.Username != "ada" || !slices.Equal(gotU.Roles, u.Roles) {
		t.Fatalf("user = %+v, want %+v", gotU, u)
	}
	if gotT, gotU, err = r.TokenWithUser(ctx, "tok_b"); err != nil || gotT.ID != "tok_b" || gotU.ID != "" {
		t.Fatalf("a token whose user is gone: %+v, %+v, %v; want the token, no user, no error", gotT, gotU, err)
	}
	_, _, err = r.TokenWithUser(ctx, "tok_none")
	wantNotFound(t, "missing token", err)

	// Revoked, then deleted: each shows on the next read.
	revoked := tok
	revoked.RevokedAt = &t0
	update(t, st, func(tx core.Tx) error { return tx.PutToken(revoked) })
	if gotT, _, err = r.TokenWithUser(ctx, "tok_a"); err != nil || gotT.RevokedAt == nil {
		t.Fatalf("after revoking: %+v, %v; want the revocation", gotT, err)
	}
	update(t, st, func(tx core.Tx) error { return tx.DeleteToken(revoked) })
	_, _, err = r.TokenWithUser(ctx, "tok_a")
	wantNotFound(t, "deleted token", err)
}
