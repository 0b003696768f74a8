package web_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/core"
)

// recoveryScenarios continue TestBrowser (its users exist and have keys):
// alice loses her key; the helpdesk opens a recovery case and records an
// identity check, which a security officer approves; the helpdesk issues
// a temporary access pass, and alice registers a new key with it. Then
// alice makes new recovery codes after a step-up, and the overview shows
// the event sinks and the break-glass credential in use.
func recoveryScenarios(t *testing.T, e *env, b *browser, alice core.User) {
	ctx := context.Background()
	var caseID, pass string

	t.Run("the helpdesk opens a recovery case and a second officer approves the identity check", func(t *testing.T) {
		b.t = t
		b.do(chromedp.EmulateViewport(1280, 900))
		b.loseKey(alice.ID)
		b.signOut() // the officer of the tests before
		b.signIn("helpdesk1", "/admin")
		b.do(chromedp.Navigate(e.url + "/admin/users/" + alice.ID))
		b.waitPath("/admin/users/" + alice.ID)
		b.do(chromedp.SetValue("#rc-reason", "key lost on a train"), chromedp.Click("#rc-suspend"))
		b.submit("#open-recovery button", "/admin/users/"+alice.ID)
		if got := b.text(".flash"); !strings.Contains(got, "Recovery case") {
			t.Fatalf("no confirmation of the case: %q / %s", got, b.text("main"))
		}
		cs, _, err := e.svc.ListRecovery(ctx, core.System, core.RecoveryFilter{UserID: alice.ID}, core.PageReq{})
		if err != nil || len(cs) != 1 || cs[0].State != api.CaseOpen || !cs[0].Suspended {
			t.Fatalf("want one open case with the lost key suspended: %+v %v", cs, err)
		}
		caseID = cs[0].ID
		b.shot("recovery")
		b.do(chromedp.SetValue("#detail-"+caseID, "passport seen at the desk, number ends 1234"))
		b.submit(`form[action="/admin/recovery/`+caseID+`/identity-check"] button`, "/admin/users/"+alice.ID)
		if got := b.text("#pending-" + caseID); !strings.Contains(got, "waits for a second officer") {
			t.Fatalf("the identity check is not shown as waiting: %q / %s", got, b.text("main"))
		}
		as, _, err := e.svc.ListApprovals(ctx, core.System, api.ApprovalPending, core.PageReq{})
		if err != nil || len(as) != 1 || as[0].Action != api.ActionRecoveryIdentity {
			t.Fatalf("want one pending identity check: %+v %v", as, err)
		}
		// The helpdesk user cannot approve their own check.
		if code := b.post("/admin/approvals/"+as[0].ID+"/approve", b.csrf()); code != 403 {
			t.Fatalf("helpdesk approving its own identity check: status %d, want 403", code)
		}
		b.signOut()

		b.signIn("officer", "/admin")
		b.do(chromedp.Navigate(e.url + "/admin/approvals"))
		b.waitPath("/admin/approvals")
		b.approve(as[0].ID, "passport number matches the HR record")
		c, err := e.svc.GetRecovery(ctx, core.System, caseID)
		if err != nil || c.State != api.CaseConfirmed || c.Method != api.MethodHelpdeskCheck || c.ApprovedBy == nil || c.ApprovedBy.Name != "officer" {
			t.Fatalf("case after approval: %+v %v", c, err)
		}
		b.signOut()
	})

	t.Run("the helpdesk issues a temporary access pass, shown once", func(t *testing.T) {
		b.t = t
		b.signIn("helpdesk1", "/admin")
		b.do(chromedp.Navigate(e.url + "/admin/users/" + alice.ID))
		b.waitPath("/admin/users/" + alice.ID)
		b.do(chromedp.SetValue("#ttl-"+caseID, "30m"))
		b.submit(`form[action="/admin/recovery/`+caseID+`/pass"] button`, "/admin/recovery/"+caseID+"/pass")
		pass = strings.TrimSpace(b.text("#access-pass"))
		if !strings.HasPrefix(pass, "kfp-") {
			t.Fatalf("no access pass on the page: %q / %s", pass, b.text("main"))
		}
		b.shot("recovery-pass")
		b.do(chromedp.Navigate(e.url + "/admin/users/" + alice.ID))
		b.waitPath("/admin/users/" + alice.ID)
		if strings.Contains(b.text("main"), pass) {
			t.Fatal("the pass is shown again on the user's page")
		}
		b.signOut()
	})

	t.Run("a user redeems the pass and registers a new key", func(t *testing.T) {
		b.t = t
		if codes := b.welcome(pass); codes != nil {
			t.Fatalf("alice already had recovery codes, yet new ones were shown: %q", codes)
		}
		b.signIn("alice", "/me")
		c, err := e.svc.GetRecovery(ctx, core.System, caseID)
		if err != nil || c.State != api.CaseClosed || c.NewFactorID == "" {
			t.Fatalf("case after the new key: %+v %v", c, err)
		}
		for _, id := range c.LostFactorIDs {
			if f, err := e.svc.GetFactor(ctx, core.System, id); err != nil || f.State != api.FactorRevoked {
				t.Fatalf("lost factor %s after recovery: %+v %v", id, f.State, err)
			}
		}
		// The pass worked once.
		b.signOut()
		b.do(chromedp.Navigate(e.url+"/welcome"), chromedp.WaitVisible("#code"), chromedp.SetValue("#code", pass), chromedp.Click("#welcome button"))
		b.settle(`document.getElementById("live").textContent.includes("not valid")`, "the used pass refused")
	})

	t.Run("a new user gets an access pass for a first key and registers it", func(t *testing.T) {
		b.t = t
		nell, _, err := e.svc.CreateUser(ctx, core.System, api.CreateUser{Username: "nell", Groups: []string{"sales"}})
		if err != nil {
			t.Fatal(err)
		}
		b.signIn("helpdesk1", "/admin")
		b.do(chromedp.Navigate(e.url + "/admin/users/" + nell.ID))
		b.waitPath("/admin/users/" + nell.ID)
		b.submit(`form[action="/admin/users/`+nell.ID+`/pass"] button`, "/admin/users/"+nell.ID+"/pass")
		first := strings.TrimSpace(b.text("#access-pass"))
		if !strings.HasPrefix(first, "kfp-") {
			t.Fatalf("no access pass on the page: %q / %s", first, b.text("main"))
		}
		b.signOut()
		if codes := b.welcome(first); len(codes) != 10 {
			t.Fatalf("a first key registered with a pass showed %d recovery codes, want 10", len(codes))
		}
		b.signIn("nell", "/me")
		fs, _, err := e.svc.ListFactors(ctx, core.System, core.FactorFilter{UserID: nell.ID}, core.PageReq{})
		if err != nil || len(fs) != 1 || fs[0].State != api.FactorActive {
			t.Fatalf("nell's factors after the pass: %+v %v", fs, err)
		}
		b.signOut()
	})

	t.Run("a user removes a spare factor at once", func(t *testing.T) {
		b.t = t
		old := e.addTOTP(t, "nell", "Old phone")
		b.signIn("nell", "/me")
		b.submit(`form[action="/me/factors/`+old.ID+`/remove"] button`, "/me")
		if got := b.text(".flash"); !strings.Contains(got, "Removed Old phone") {
			t.Fatalf("no confirmation of the removal: %q / %s", got, b.text("main"))
		}
		if f, err := e.svc.GetFactor(ctx, core.System, old.ID); err != nil || f.State != api.FactorRevoked {
			t.Fatalf("the spare factor after removal: %+v %v", f.State, err)
		}
		if as, _, _ := e.svc.ListApprovals(ctx, core.System, api.ApprovalPending, core.PageReq{}); len(as) != 0 {
			t.Fatalf("a removal that leaves nell compliant opened %d approvals", len(as))
		}
		b.signOut()
	})

	t.Run("a user makes new recovery codes after confirming with the key", func(t *testing.T) {
		b.t = t
		e.offset.Store(int64(-6 * time.Minute)) // sign in 6 minutes "ago": the step-up is stale now
		b.signIn("alice", "/me")
		e.offset.Store(0)
		b.do(chromedp.Navigate(e.url + "/me"))
		b.waitPath("/me")
		if code := b.post("/me/recovery-codes", b.csrf()); code != 403 {
			t.Fatalf("new codes without a proof of the key: status %d, want 403", code)
		}
		b.submit(`form[action="/me/recovery-codes"] button`, "/me/recovery-codes")
		codes := eval[[]string](b, `[...document.querySelectorAll("#recovery-codes li")].map(li => li.textContent.trim())`)
		if len(codes) != 10 {
			t.Fatalf("want 10 codes on the page, got %q / %s", codes, b.text("main"))
		}
		if n, err := e.svc.RecoveryCodesRemaining(ctx, alice.ID); err != nil || n != 10 {
			t.Fatalf("codes left after regenerating: %d %v", n, err)
		}
		b.shot("recovery-codes")
		b.do(chromedp.Navigate(e.url + "/me"))
		b.waitPath("/me")
		if got := b.text("#codes-left"); !strings.Contains(got, "10 unused") {
			t.Fatalf("codes left on /me: %q", got)
		}
		b.signOut()
	})

	t.Run("the overview shows sink health and break-glass in use", func(t *testing.T) {
		b.t = t
		if _, err := e.svc.UseBreakGlass(ctx, api.BreakGlassUse{Shares: e.shares[:3], Duration: "1h", Reason: "browser test: all admins locked out"}); err != nil {
			t.Fatal(err)
		}
		// Wait until the file sink delivered and the webhook, whose receiver
		// is down, failed.
		deadline := time.Now().Add(20 * time.Second)
		for !sinksReady(e) && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
		}
		b.signIn("admin1", "/admin")
		sinks := b.text("#sinks")
		if !strings.Contains(sinks, "audit-file") || !strings.Contains(sinks, "siem-webhook") || !strings.Contains(sinks, "failing") {
			t.Fatalf("sink health: %q", sinks)
		}
		if priv := b.text("#privilege"); !strings.Contains(priv, "approval.refused (self-approval)") || !strings.Contains(priv, "breakglass.start") || !strings.Contains(priv, "approval.approve") {
			t.Fatalf("the overview's privilege panel: %q", priv)
		}
		bg := b.text("#breakglass")
		if !strings.Contains(bg, "used, not rotated") || !strings.Contains(bg, "session is open") || !strings.Contains(bg, "any 3 of 5") {
			t.Fatalf("break-glass status: %q", bg)
		}
		b.shot("overview-health")
	})

	t.Run("the new pages work at phone width", func(t *testing.T) {
		b.t = t
		b.do(chromedp.EmulateViewport(390, 844))
		for _, page := range []string{"/admin/users/" + alice.ID, "/admin", "/me"} {
			b.do(chromedp.Navigate(e.url + page))
			b.waitPath(page)
			if !b.check("document.documentElement.scrollWidth <= window.innerWidth + 1") {
				wide := eval[[]string](b, `[...document.querySelectorAll("main *")].filter(el => el.getBoundingClientRect().right > window.innerWidth + 1).slice(0, 5).map(el => el.tagName + "." + el.className)`)
				t.Fatalf("%s scrolls sideways at 390 px: %v", page, wide)
			}
		}
		b.shot("phone-overview")
		b.do(chromedp.Navigate(e.url + "/admin/users/" + alice.ID))
		b.waitPath("/admin/users/" + alice.ID)
		b.shot("phone-recovery")
		b.signOut()
		b.do(chromedp.Navigate(e.url + "/welcome"))
		b.waitPath("/welcome")
		b.shot("phone-welcome")
	})
}

// sinksReady: the file sink delivered something and the webhook failed.
func sinksReady(e *env) bool {
	var file, hook bool
	for _, st := range e.sinks.Status() {
		file = file || st.Name == "audit-file" && st.Delivered > 0
		hook = hook || st.Name == "siem-webhook" && st.Failures > 0
	}
	return file && hook
}
