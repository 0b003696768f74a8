package web_test

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/core"
)

// lockoutPolicy lets administrators sign in with PIV keys only; admin1
// holds a FIDO2 key: applying it would shut every administrator out.
const lockoutPolicy = testPolicy + `  - name: admins
    match: {roles: [admin]}
    require: {verification_kinds: [piv]}
`

// appSignInPolicy lets people without a key sign in to their own pages
// with their app and a recovery code (a weakening: a second person).
const appSignInPolicy = `version: 1
description: Browser test policy.
self_service:
  app_sign_in: [recovery_code]
rules:
  - name: everyone
    match: {everyone: true}
    require: {min_factors: 1, allowed_kinds: [fido2, totp, yubikey], enroll_within: 30d}
  - name: engineering
    match: {groups: [eng]}
    require: {min_factors: 1, allowed_kinds: [fido2], enroll_within: 1d}
`

// adminDayScenarios continue TestBrowser: an administrator's day in the
// pages, with a second officer deciding what needs two people.
func adminDayScenarios(t *testing.T, e *env, b *browser, carol core.User) {
	ctx := context.Background()
	var dana core.User

	t.Run("an admin creates a user whose role waits for a second person, edits them and asks to disable another", func(t *testing.T) {
		b.t = t
		b.do(chromedp.EmulateViewport(1280, 900))
		b.signIn("admin1", "/admin")
		if got := strings.Join(strings.Fields(b.text("#recovery-tile")), " "); got != "0 open recovery cases" {
			t.Fatalf("the overview's recovery tile: %q", got)
		}
		// A user's trail holds what happened to their factors too.
		b.do(chromedp.Navigate(e.url + "/admin/users/" + carol.ID))
		b.waitPath("/admin/users/" + carol.ID)
		if got := b.text("#au-h + table"); !strings.Contains(got, "factor.enrol") || !strings.Contains(got, "factor.revoke") {
			t.Fatalf("carol's trail lacks her factors' events: %s", got)
		}
		b.do(chromedp.Navigate(e.url + "/admin/users"))
		b.submit("#new-user-link", "/admin/users/new")
		b.do(chromedp.SetValue("#nu-username", "dana"), chromedp.SetValue("#nu-name", "Dana Scully"),
			chromedp.SetValue("#nu-groups", "eng, support"), chromedp.Click("#nu-role-helpdesk"))
		b.shot("user-new")
		b.submit("#new-user button", "/admin/users/")
		if got := b.text(".flash"); !strings.Contains(got, "dana is created") || !strings.Contains(got, "helpdesk wait for a second person") {
			t.Fatalf("no word of the waiting role: %q / %s", got, b.text("main"))
		}
		var err error
		if dana, err = e.svc.GetUser(ctx, core.System, "dana"); err != nil || slices.Contains(dana.Roles, api.RoleHelpdesk) || !slices.Equal(dana.Groups, []string{"eng", "support"}) {
			t.Fatalf("dana after creation: %+v %v (the role must wait)", dana, err)
		}
		b.do(chromedp.Click("#acct-h + details > summary"), chromedp.SetValue("#ed-email", "dana@example.com"))
		b.submit("#edit-user button", "/admin/users/"+dana.ID)
		if u, _ := e.svc.GetUser(ctx, core.System, "dana"); u.Email != "dana@example.com" {
			t.Fatalf("the edit did not save the email: %+v / %s", u, b.text("main"))
		}
		nell, _ := e.svc.GetUser(ctx, core.System, "nell")
		b.do(chromedp.Navigate(e.url+"/admin/users/"+nell.ID), chromedp.SetValue("#dis-reason", "=left the company"))
		b.submit("#disable-user button", "/admin/users/"+nell.ID)
		if got := b.text(".flash"); !strings.Contains(got, "Disabling nell is requested") {
			t.Fatalf("no word of the disable request: %q", got)
		}
	})

	t.Run("an admin makes a token of their own with their key and a service account's", func(t *testing.T) {
		b.t = t
		b.do(chromedp.Navigate(e.url + "/tokens"))
		b.waitPath("/tokens")
		b.do(chromedp.SetValue("#tok-name", "laptop"))
		b.submit("#new-own-token button", "/tokens")
		secret := strings.TrimSpace(b.text("#token-secret"))
		if !strings.HasPrefix(secret, "kf_") {
			t.Fatalf("no token secret on the page: %q / %s", secret, b.text("main"))
		}
		if p, err := e.svc.Authenticate(ctx, secret); err != nil || p.Username != "admin1" {
			t.Fatalf("the new token: %+v %v", p, err)
		}
		b.do(chromedp.Navigate(e.url + "/tokens"))
		b.waitPath("/tokens")
		if strings.Contains(b.text("main"), secret) {
			t.Fatal("the secret is shown again")
		}
		b.submit(`#own-h ~ table form button`, "/tokens")
		if _, err := e.svc.Authenticate(ctx, secret); err == nil {
			t.Fatal("the revoked token still works")
		}
		// A token that acts as another person is refused, and changes nothing.
		if code := b.postForm("/tokens", map[string]string{"name": "carols", "user": carol.ID}); code != 403 {
			t.Fatalf("an admin making a token for carol: status %d, want 403", code)
		}
		if _, _, err := e.svc.CreateUser(ctx, core.System, api.CreateUser{Username: "ci-bot", Kind: api.KindService, Roles: []string{api.RoleService}}); err != nil {
			t.Fatal(err)
		}
		b.do(chromedp.Navigate(e.url+"/tokens"), chromedp.SetValue("#svc-name", "deploy"))
		b.submit("#new-service-token button", "/tokens")
		if got := b.text("#token-secret"); !strings.HasPrefix(strings.TrimSpace(got), "kf_") || !strings.Contains(b.text("#new-tok-h"), "ci-bot") {
			t.Fatalf("no service token shown: %q", got)
		}
		b.shot("tokens")
	})

	t.Run("the policy editor checks as you type and the dry run warns of locking out the last admin", func(t *testing.T) {
		b.t = t
		b.do(chromedp.Navigate(e.url + "/admin/policy"))
		b.waitPath("/admin/policy")
		b.typeDoc("version: 1\nrules:\n  - name: x\n    match: {}\n")
		b.settle(`document.getElementById("policy-check").textContent.includes("line 4")`, "the problem and its line")
		b.typeDoc(lockoutPolicy)
		b.settle(`document.getElementById("policy-check").textContent.includes("No problems") && document.getElementById("policy-check").textContent.includes("1 requirement")`, "a valid document's changes")
		b.submit("#policy-form > button", "/admin/policy/dry-run")
		if got := b.text("#dry-run"); !strings.Contains(got, "No administrator could sign in under this policy") || !strings.Contains(b.text("#policy-diff"), "+   - name: admins") {
			t.Fatalf("the dry run: %s", got)
		}
		b.shot("policy-dry-run")
		// Turning app sign-in on weakens the policy: applied with the key,
		// it waits for the officer.
		b.typeDoc(appSignInPolicy)
		b.settle(`document.getElementById("policy-check").textContent.includes("weakens")`, "the weakening named as you type")
		b.submit("#policy-form > button", "/admin/policy/dry-run")
		b.submit("#apply-policy button", "/admin/policy")
		if got := b.text(".flash"); !strings.Contains(got, "waits for a second person") {
			t.Fatalf("applying a weaker policy: %q / %s", got, b.text("main"))
		}
	})

	t.Run("the audit log reads newest first, filters in words and exports", func(t *testing.T) {
		b.t = t
		b.do(chromedp.Navigate(e.url + "/admin/audit?user=dana"))
		b.waitURL("user=dana")
		seqs := eval[[]int](b, `[...document.querySelectorAll("#audit-events tbody tr td:first-child")].map(td => parseInt(td.textContent, 10))`)
		if len(seqs) < 2 || !slices.IsSortedFunc(seqs, func(a, b int) int { return b - a }) {
			t.Fatalf("events about dana, newest first: %v", seqs)
		}
		if got := b.text("#audit-events"); !strings.Contains(got, "user.create") || !strings.Contains(got, "admin1") {
			t.Fatalf("dana's events name the admin who made her: %s", got)
		}
		b.shot("audit")
		b.do(chromedp.Navigate(e.url+"/admin/audit"), chromedp.SetValue("#f-sev", "high"), chromedp.SetValue("#f-since", "24h"))
		b.submit(".filters button", "/admin/audit")
		b.waitURL("severity=high")
		if sev := eval[[]string](b, `[...document.querySelectorAll("#audit-events .sev")].map(s => s.textContent)`); len(sev) == 0 || slices.ContainsFunc(sev, func(s string) bool { return s != "high" }) {
			t.Fatalf("severity high shows %v", sev)
		}
		lines := strings.Split(strings.TrimSpace(b.fetch("/admin/audit/export?format=jsonl&user=dana")), "\n")
		var first struct{ Schema, Action, Severity string }
		if err := json.Unmarshal([]byte(lines[0]), &first); err != nil || first.Schema != "keyfleet.audit/v1" || first.Action != "user.create" || first.Severity == "" {
			t.Fatalf("JSON lines export: %v %+v %q", err, first, lines[0])
		}
		rows, err := csv.NewReader(strings.NewReader(b.fetch("/admin/audit/export?format=csv&action=approval.request"))).ReadAll()
		if err != nil || len(rows) < 2 || rows[0][0] != "seq" {
			t.Fatalf("CSV export: %v %v", rows, err)
		}
		if !slices.ContainsFunc(rows, func(r []string) bool { return r[11] == "'=left the company" }) {
			t.Fatalf("a reason that begins with = must be written as text: %v", rows)
		}
		b.do(chromedp.Navigate(e.url + "/admin/audit"))
		b.submit("#verify-chain", "/admin/audit")
		if got := b.text("#chain-status"); !strings.Contains(got, "Intact") {
			t.Fatalf("chain: %q", got)
		}
	})

	t.Run("the activity charts draw verifications, enrolments and keys, vulnerable ones marked", func(t *testing.T) {
		b.t = t
		e.addYubiKey(t, "alice", "5.4.3", "1001") // EUCLEAK (YSA-2024-03)
		e.addYubiKey(t, "alice", "5.7.4", "1002")
		b.do(chromedp.Navigate(e.url + "/admin/activity"))
		b.waitPath("/admin/activity")
		if got := eval[string](b, `document.getElementById("ver-t").textContent`); !strings.Contains(got, "success") {
			t.Fatalf("the verifications chart: %q", got)
		}
		if got := b.text("main"); !strings.Contains(got, "Factors enrolled per day by kind") || !strings.Contains(got, "fido2") {
			t.Fatalf("activity: %s", got)
		}
		bad := eval[[]string](b, `[...document.querySelectorAll("#models tr.vulnerable")].map(tr => tr.textContent)`)
		if len(bad) != 1 || !strings.Contains(bad[0], "5.4.3") || !strings.Contains(bad[0], "YSA-2024-03") {
			t.Fatalf("vulnerable keys marked: %q", bad)
		}
		b.shot("activity")
		b.signOut()
	})

	t.Run("the helpdesk sees open cases in the queue and revokes a last factor only with a replacement planned", func(t *testing.T) {
		b.t = t
		b.signIn("helpdesk1", "/admin")
		b.do(chromedp.Navigate(e.url+"/admin/users/"+carol.ID), chromedp.SetValue("#rc-reason", "phone left in a taxi"))
		b.submit("#open-recovery button", "/admin/users/"+carol.ID)
		b.do(chromedp.Navigate(e.url + "/admin"))
		b.submit("#recovery-tile", "/admin/recovery")
		if got := b.text("#recovery-queue"); !strings.Contains(got, "carol") || !strings.Contains(got, "confirm who the user is") {
			t.Fatalf("the queue: %s", got)
		}
		b.shot("recovery-queue")
		fs, _, _ := e.svc.ListFactors(ctx, core.System, core.FactorFilter{UserID: carol.ID, State: api.FactorActive}, core.PageReq{})
		if len(fs) != 1 {
			t.Fatalf("carol should have one active factor left: %d", len(fs))
		}
		last := fs[0]
		b.do(chromedp.Navigate(e.url+"/admin/users/"+carol.ID), chromedp.SetValue("#why-"+last.ID, "replaced by a key"))
		b.submit(`form[action="/admin/factors/`+last.ID+`/revoke"] button`, "/admin/factors/")
		if got := b.text("main"); !strings.Contains(got, "last active factor") {
			t.Fatalf("revoking the last factor without a plan: %s", got)
		}
		b.do(chromedp.Navigate(e.url+"/admin/users/"+carol.ID), chromedp.SetValue("#why-"+last.ID, "replaced by a key"), chromedp.Click("#rp-"+last.ID))
		b.submit(`form[action="/admin/factors/`+last.ID+`/revoke"] button`, "/admin/users/"+carol.ID)
		if got := b.text(".flash"); !strings.Contains(got, "Revocation requested") {
			t.Fatalf("with a replacement planned: %q / %s", got, b.text("main"))
		}
		b.signOut()
	})

	t.Run("a second officer reads what each request does and who may decide it, and approves from the keyboard", func(t *testing.T) {
		b.t = t
		b.signIn("officer", "/admin")
		b.do(chromedp.Navigate(e.url + "/admin/approvals"))
		b.waitPath("/admin/approvals")
		grant := e.pending(t, api.ActionUserAccess, dana.ID)
		if got := b.text("#preview-" + grant.ID); !strings.Contains(got, "Granting helpdesk for dana") {
			t.Fatalf("the grant's preview: %q", got)
		}
		if got := b.text("#approvers-" + grant.ID); !strings.Contains(got, "officer") || strings.Contains(got, "admin1") {
			t.Fatalf("who may decide the grant (never its requester): %q", got)
		}
		if href := eval[string](b, `document.querySelector("#ah-`+grant.ID+` h3 a").getAttribute("href")`); href != "/admin/users/"+dana.ID {
			t.Fatalf("the grant links %q, want dana's page", href)
		}
		b.shot("approvals")
		// A decision without a reason is refused, even with the key's proof.
		if code := b.proveAndPost("approval.approve", grant.ID, "/admin/approvals/"+grant.ID+"/approve", " "); code != 400 {
			t.Fatalf("approving without a reason: status %d, want 400", code)
		}
		// From the keyboard: focus the reason, type it, press Enter; the
		// page asks the key (the virtual authenticator answers).
		eval[bool](b, "window.__kfLeaving = true")
		b.do(chromedp.Focus("#c-"+grant.ID), chromedp.SendKeys("#c-"+grant.ID, "checked with her manager\r"))
		b.settle(`!window.__kfLeaving && location.pathname === "/admin/approvals"`, "the approval's result")
		if u, _ := e.svc.GetUser(ctx, core.System, "dana"); !slices.Contains(u.Roles, api.RoleHelpdesk) {
			t.Fatalf("dana after the approval: %v", u.Roles)
		}
		nell, _ := e.svc.GetUser(ctx, core.System, "nell")
		b.approve(e.pending(t, api.ActionUserDisable, nell.ID).ID, "confirmed with HR")
		b.approve(e.pending(t, api.ActionPolicyApply, "").ID, "app sign-in agreed by the board")
		if u, _ := e.svc.GetUser(ctx, core.System, "nell"); u.Status != api.UserDisabled {
			t.Fatalf("nell after the approval: %s", u.Status)
		}
		if checks, _ := e.svc.AppSignInChecks(ctx); !slices.Equal(checks, []string{"recovery_code"}) {
			t.Fatalf("app sign-in after the approval: %v", checks)
		}
		b.signOut()
	})

	t.Run("an admin enables the disabled user again", func(t *testing.T) {
		b.t = t
		nell, _ := e.svc.GetUser(ctx, core.System, "nell")
		b.signIn("admin1", "/admin")
		b.do(chromedp.Navigate(e.url + "/admin/users/" + nell.ID))
		b.submit(`form[action="/admin/users/`+nell.ID+`/enable"] button`, "/admin/users/"+nell.ID)
		if u, _ := e.svc.GetUser(ctx, core.System, "nell"); u.Status != api.UserActive {
			t.Fatalf("nell after enabling: %s", u.Status)
		}
	})

	t.Run("the new pages fit a phone", func(t *testing.T) {
		b.t = t
		b.do(chromedp.EmulateViewport(390, 844))
		for _, page := range []string{"/admin/approvals", "/admin/audit", "/admin/policy", "/tokens", "/admin/recovery", "/admin/activity", "/admin/users/new"} {
			b.do(chromedp.Navigate(e.url + page))
			b.waitPath(page)
			if !b.check("document.documentElement.scrollWidth <= window.innerWidth + 1") {
				wide := eval[[]string](b, `[...document.querySelectorAll("main *")].filter(el => el.getBoundingClientRect().right > window.innerWidth + 1).slice(0, 5).map(el => el.tagName + "." + el.className + "#" + el.id)`)
				t.Fatalf("%s scrolls sideways at 390 px: %v", page, wide)
			}
		}
		b.shot("phone-user-new")
		b.do(chromedp.Navigate(e.url + "/admin/activity"))
		b.waitPath("/admin/activity")
		b.shot("phone-activity")
		b.do(chromedp.EmulateViewport(1280, 900))
		b.signOut()
	})
}

// pending finds the one pending request of an action about target ("":
// any target).
func (e *env) pending(t *testing.T, action, target string) core.Approval {
	t.Helper()
	as, _, err := e.svc.ListApprovals(context.Background(), core.System, api.ApprovalPending, core.PageReq{})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range as {
		if a.Action == action && (target == "" || a.TargetID == target) {
			return a
		}
	}
	t.Fatalf("no pending %s request about %s among %d", action, target, len(as))
	return core.Approval{}
}

// typeDoc replaces the policy editor's text as typing would, firing the
// input event the page listens to.
func (b *browser) typeDoc(doc string) {
	b.t.Helper()
	eval[bool](b, `(() => { const a = document.getElementById("document"); a.value = `+jsString(doc)+`; a.dispatchEvent(new Event("input")); return true; })()`)
}

// postForm posts fields (and the session's CSRF token) from the page, as
// a forged or hand-made form would, and returns the status.
func (b *browser) postForm(path string, fields map[string]string) int {
	b.t.Helper()
	js, _ := json.Marshal(fields)
	return eval[int](b, `(() => { const f = new URLSearchParams(`+string(js)+`); f.set("csrf", document.querySelector('meta[name="csrf"]').content);
	  return fetch(`+jsString(path)+`, {method: "POST", body: f, redirect: "manual"}).then(r => r.status); })()`)
}

// fetch reads a page's body from the page's own context (a download).
func (b *browser) fetch(path string) string {
	b.t.Helper()
	return eval[string](b, `fetch(`+jsString(path)+`).then(r => r.text())`)
}
