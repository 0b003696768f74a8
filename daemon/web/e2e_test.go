package web_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/core"
)

// browser is one headless Chromium tab with a virtual FIDO2 key (CTAP2,
// user verification, presence simulated), as the WebAuthn domain of the
// DevTools protocol provides.
type browser struct {
	t    *testing.T
	ctx  context.Context
	url  string
	auth webauthn.AuthenticatorID // the virtual key
}

func newBrowser(t *testing.T, exe, url string) *browser {
	t.Helper()
	actx, cancelA := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(exe), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 900))
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelA() })
	if _, err := chromedp.Call(ctx, webauthn.Enable, webauthn.EnableParams{}); err != nil {
		t.Fatalf("enabling WebAuthn in Chromium: %v", err)
	}
	va, err := chromedp.Call(ctx, webauthn.AddVirtualAuthenticator, webauthn.AddVirtualAuthenticatorParams{Options: &webauthn.VirtualAuthenticatorOptions{
		Protocol: webauthn.AuthenticatorProtocolCtap2, Transport: webauthn.AuthenticatorTransportUsb, HasResidentKey: true,
		HasUserVerification: true, IsUserVerified: true, AutomaticPresenceSimulation: true}})
	if err != nil {
		t.Fatalf("adding a virtual authenticator: %v", err)
	}
	// Chromium's virtual key signs its attestation with a new self-made
	// certificate each time, which no root can vouch for, so the test
	// browser asks for no attestation, as many passkey providers answer;
	// the fido2 kind accepts unattested keys unless configured to require
	// attestation. The pages themselves pass the kind's options unchanged.
	_, err = chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: noAttestation})
	if err != nil {
		t.Fatalf("installing the test hook: %v", err)
	}
	return &browser{t: t, ctx: ctx, url: url, auth: va.AuthenticatorID}
}

// loseKey removes a user's credentials from the virtual key, as if the
// user lost the key that held them (the user handle is the user id).
func (b *browser) loseKey(userID string) {
	b.t.Helper()
	creds, err := chromedp.Call(b.ctx, webauthn.GetCredentials, webauthn.GetCredentialsParams{AuthenticatorID: b.auth})
	if err != nil {
		b.t.Fatalf("reading the virtual key: %v", err)
	}
	for _, c := range creds.Credentials {
		if string(c.UserHandle) != userID {
			continue
		}
		if _, err := chromedp.Call(b.ctx, webauthn.RemoveCredential, webauthn.RemoveCredentialParams{AuthenticatorID: b.auth, CredentialID: c.CredentialID}); err != nil {
			b.t.Fatalf("removing a credential: %v", err)
		}
	}
}

const noAttestation = `(() => {
  const create = navigator.credentials.create.bind(navigator.credentials);
  navigator.credentials.create = (o) => { if (o && o.publicKey) o.publicKey.attestation = "none"; return create(o); };
})();`

func (b *browser) do(steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 60*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.t.Fatalf("browser: %v (page: %s)", err, b.text("main"))
	}
}

func (b *browser) text(sel string) string {
	ctx, cancel := context.WithTimeout(b.ctx, 3*time.Second)
	defer cancel()
	s, _ := chromedp.Run(ctx, chromedp.Text(sel))
	return s
}

func eval[T any](b *browser, js string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 60*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js, chromedp.EvalAwaitPromise))
	if err != nil {
		b.t.Fatalf("evaluating %.60q: %v", js, err)
	}
	return v
}

// check evaluates a condition without failing: while a navigation is
// under way the page's context may be gone, which reads as false.
func (b *browser) check(js string) bool {
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](js))
	return err == nil && ok
}

// settle waits until js holds on a fully loaded page, then for main.
func (b *browser) settle(js, what string) {
	b.t.Helper()
	deadline := time.Now().Add(45 * time.Second)
	for time.Now().Before(deadline) {
		if b.check(`document.readyState === "complete" && (` + js + `)`) {
			b.do(chromedp.WaitVisible("main"))
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	b.t.Fatalf("never reached %s; page says: %s", what, b.text("main"))
}

// waitPath waits until the tab shows a loaded page under path.
func (b *browser) waitPath(path string) {
	b.t.Helper()
	b.settle(`location.pathname.startsWith(`+jsString(path)+`)`, path)
}

// waitURL waits until the address holds part (a query after a form's
// GET), so a step does not run against the page the navigation is leaving.
func (b *browser) waitURL(part string) {
	b.t.Helper()
	b.settle(`location.href.includes(`+jsString(part)+`)`, "a page with "+part)
}

// submit clicks sel (a form's button) and waits for the page the form
// leads to: a new document under path, fully loaded. The old document
// carries a mark, so a form that comes back to the same address is not
// mistaken for its own result.
func (b *browser) submit(sel, path string) {
	b.t.Helper()
	eval[bool](b, "window.__kfLeaving = true")
	b.do(chromedp.Click(sel))
	b.settle(`!window.__kfLeaving && location.pathname.startsWith(`+jsString(path)+`)`, path+" after "+sel)
}

// proveAndPost does by script what a page's proof-bound form does: it asks
// for a proof of action about subject, answers it with the signed-in
// user's key, and posts the form to path with the answer and a comment.
// It returns the status.
func (b *browser) proveAndPost(action, subject, path, comment string) int {
	b.t.Helper()
	script := `(async () => {
	  const csrf = document.querySelector('meta[name="csrf"]').content;
	  const b64 = (buf) => btoa(String.fromCharCode(...new Uint8Array(buf))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
	  const unb64 = (s) => Uint8Array.from(atob(s.replace(/-/g, "+").replace(/_/g, "/")), (c) => c.charCodeAt(0));
	  const r = await fetch("/proof/begin", {method: "POST", headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf}, body: JSON.stringify({action: ` + jsString(action) + `, subject: ` + jsString(subject) + `})});
	  const begun = await r.json();
	  const f = begun.factors[0];
	  const o = JSON.parse(JSON.stringify(f.options));
	  o.challenge = unb64(o.challenge);
	  o.allowCredentials = (o.allowCredentials || []).map((c) => ({type: c.type, id: unb64(c.id)}));
	  const c = await navigator.credentials.get({publicKey: o});
	  const proof = {id: begun.id, factor_id: f.factor_id, response: {id: c.id, rawId: b64(c.rawId), type: c.type, clientExtensionResults: {},
	    response: {clientDataJSON: b64(c.response.clientDataJSON), authenticatorData: b64(c.response.authenticatorData), signature: b64(c.response.signature)}}};
	  const body = new URLSearchParams({csrf: csrf, comment: ` + jsString(comment) + `, proof: JSON.stringify(proof)});
	  const res = await fetch(` + jsString(path) + `, {method: "POST", body: body, redirect: "manual"});
	  return res.status;
	})()`
	return eval[int](b, script)
}

// approve approves a request on the approvals page with a reason; the
// page confirms it with the signed-in user's key, bound to the request.
func (b *browser) approve(id, reason string) {
	b.t.Helper()
	b.do(chromedp.SetValue("#c-"+id, reason))
	b.submit(`form[action="/admin/approvals/`+id+`/approve"] button`, "/admin/approvals")
}

// welcome registers a key with an enrolment code or access pass. A first
// key comes with recovery codes, shown once on the page: welcome returns
// them (after the screenshot named shot, if any) and goes on to sign-in.
func (b *browser) welcome(code string, shot ...string) []string {
	b.t.Helper()
	b.do(chromedp.Navigate(b.url+"/welcome"), chromedp.WaitVisible("#code"), chromedp.SetValue("#code", code))
	eval[bool](b, "window.__kfLeaving = true")
	b.do(chromedp.Click("#welcome button"))
	b.settle(`location.pathname.startsWith("/signin") && !window.__kfLeaving || !document.getElementById("once").hidden`, "sign-in or recovery codes")
	if !b.check(`location.pathname.startsWith("/welcome")`) {
		return nil
	}
	codes := eval[[]string](b, `[...document.querySelectorAll("#first-codes li")].map(li => li.textContent)`)
	if len(shot) > 0 {
		b.shot(shot[0])
	}
	b.do(chromedp.Click("#continue"))
	b.waitPath("/signin")
	return codes
}

// signIn signs in with the keyboard alone: type the name, press Enter.
func (b *browser) signIn(user, landing string) {
	b.t.Helper()
	b.do(chromedp.Navigate(b.url + "/signin"))
	b.settle(`location.pathname.startsWith("/")`, "a page")
	if !b.check(`location.pathname.startsWith("/signin")`) {
		b.t.Fatalf("signing in as %s: someone is signed in already (page: %s)", user, b.text("main"))
	}
	b.do(chromedp.WaitVisible("#username"), chromedp.Clear("#username"))
	eval[bool](b, "window.__kfLeaving = true")
	b.do(chromedp.SendKeys("#username", user+"\r"))
	b.settle(`!window.__kfLeaving && location.pathname.startsWith(`+jsString(landing)+`)`, landing+" after signing in as "+user)
}

func (b *browser) signOut() {
	b.t.Helper()
	b.submit("form.signout button", "/signin")
}

// post sends a form post from the page's own script context, as a forged
// or stale form would, and returns the status.
func (b *browser) post(path, csrf string) int {
	return eval[int](b, `fetch(`+jsString(path)+`, {method: "POST", body: new URLSearchParams({csrf: `+jsString(csrf)+`})}).then(r => r.status)`)
}

// jsString quotes s as a JavaScript string literal (JSON's, which also
// escapes line breaks).
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func (b *browser) csrf() string {
	return eval[string](b, `document.querySelector('meta[name="csrf"]').content`)
}

// shot writes a screenshot of the whole page to the screenshots folder.
func (b *browser) shot(name string) {
	b.t.Helper()
	// make test names the folder (var/screenshots); the README's copies in
	// docs/screenshots are refreshed by hand from there.
	dir := os.Getenv("KEYFLEET_SCREENSHOTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "keyfleet-screenshots")
	}
	// A navigation still in flight can stall a screenshot: wait it out.
	for deadline := time.Now().Add(30 * time.Second); eval[string](b, "document.readyState") != "complete" && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(b.ctx, 60*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.checkA11y(name)
}

const testPolicy = `version: 1
description: Browser test policy.
rules:
  - name: everyone
    match: {everyone: true}
    require: {min_factors: 1, allowed_kinds: [fido2, totp, yubikey], enroll_within: 30d}
  - name: engineering
    match: {groups: [eng]}
    require: {min_factors: 1, allowed_kinds: [fido2], enroll_within: 1d}
`

// TestBrowser walks the pages in Chromium: first sign-in with a code,
// sign-in with the key, an admin requesting a revoke for a non-compliant
// user, a helpdesk user unable to approve it, a second admin approving it,
// and CSRF and missing step-up refused.
func TestBrowser(t *testing.T) {
	exe := chromium(t)
	e, b := startEnv(t, exe)
	ctx := context.Background()
	alice := e.createUser(t, "alice", []string{"sales"}, nil)
	e.createUser(t, "admin1", nil, []string{api.RoleAdmin})
	e.createUser(t, "officer", nil, []string{api.RoleSecurityOfficer})
	e.createUser(t, "helpdesk1", nil, []string{api.RoleHelpdesk})
	carol := e.createUser(t, "carol", []string{"eng"}, nil)
	app := e.addTOTP(t, carol.ID, "Phone app")
	e.addTOTP(t, carol.ID, "Tablet app")
	if _, err := e.svc.ApplyPolicy(ctx, core.System, api.PolicyDocument{Document: testPolicy, Comment: "browser test"}); err != nil {
		t.Fatal(err)
	}

	t.Run("a user registers a key with an enrolment code and signs in", func(t *testing.T) {
		b.t = t
		b.do(chromedp.Navigate(e.url + "/welcome"))
		b.shot("welcome")
		if codes := b.welcome(e.code(t, "alice"), "welcome-codes"); len(codes) != 10 {
			t.Fatalf("alice's first key came with %d recovery codes on the page, want 10: %q", len(codes), codes)
		}
		b.shot("signin")
		b.signIn("alice", "/me")
		if got := b.text("main"); !strings.Contains(got, "Security key") || !strings.Contains(got, "active") {
			t.Fatalf("alice's page does not list her active key: %s", got)
		}
		b.shot("self-service")
		b.signOut()
	})

	var approvalID string
	t.Run("an admin finds a non-compliant user and requests a revoke", func(t *testing.T) {
		b.t = t
		b.welcome(e.code(t, "admin1"))
		b.signIn("admin1", "/admin")
		b.shot("overview")
		// carol's deadline (1 day) has not passed inside the test, so she is
		// in grace: not compliant yet. The filter finds her either way.
		st, err := e.svc.MFAStatus(ctx, core.System, carol.ID)
		if err != nil || st.Status == "compliant" {
			t.Fatalf("carol should not be compliant: %+v %v", st, err)
		}
		b.do(chromedp.Navigate(e.url+"/admin/users"), chromedp.SetValue("#compliance", st.Status))
		b.submit(".filters button", "/admin/users")
		b.waitURL("compliance=")
		b.shot("users")
		b.submit(`a[href="/admin/users/`+carol.ID+`"]`, "/admin/users/"+carol.ID)
		b.do(chromedp.SetValue("#why-"+app.ID, "non-compliant: TOTP is not allowed for engineering"))
		b.submit(`form[action="/admin/factors/`+app.ID+`/revoke"] button`, "/admin/users/"+carol.ID)
		if got := b.text(".flash"); !strings.Contains(got, "Revocation requested") {
			t.Fatalf("no confirmation of the request: %q / %s", got, b.text("main"))
		}
		b.shot("user")
		as, _, err := e.svc.ListApprovals(ctx, core.System, api.ApprovalPending, core.PageReq{})
		if err != nil || len(as) != 1 {
			t.Fatalf("want one pending approval, got %v %v", as, err)
		}
		approvalID = as[0].ID
		// The page offers admin1 no way to decide their own request, and a
		// decision posted anyway, even with admin1's own key answering a
		// challenge for it, is refused and audited.
		b.do(chromedp.Navigate(e.url + "/admin/approvals"))
		if got := b.text("main"); !strings.Contains(got, "You asked for this") {
			t.Fatalf("admin1 is offered a decision on their own request: %s", got)
		}
		if code := b.proveAndPost("approval.approve", approvalID, "/admin/approvals/"+approvalID+"/approve", "mine, approved by me"); code != 409 {
			t.Fatalf("admin1 approving their own request with their key: status %d, want 409", code)
		}
		if a, _ := e.svc.GetApproval(ctx, core.System, approvalID); a.State != api.ApprovalPending {
			t.Fatalf("the self-approval changed the request: %s", a.State)
		}
		if recs, _ := e.svc.ListAudit(ctx, core.System, core.AuditFilter{Action: "approval.refused"}, 10); len(recs) != 1 {
			t.Fatalf("the refused self-approval is not audited: %d records", len(recs))
		}
		b.do(chromedp.Navigate(e.url + "/admin/audit?verify=1"))
		if got := b.text("#chain-status"); !strings.Contains(got, "Intact") {
			t.Fatalf("chain status: %q", got)
		}
		b.shot("audit")
		b.do(chromedp.Navigate(e.url + "/admin/devices"))
		b.shot("devices")
		b.do(chromedp.Navigate(e.url + "/admin/policy"))
		b.shot("policy")
		b.signOut()
	})

	t.Run("a helpdesk user cannot approve", func(t *testing.T) {
		b.t = t
		b.welcome(e.code(t, "helpdesk1"))
		b.signIn("helpdesk1", "/admin")
		b.do(chromedp.Navigate(e.url + "/admin/approvals"))
		if got := b.text("main"); !strings.Contains(got, "Your role cannot decide requests") {
			t.Fatalf("helpdesk sees a decision button: %s", got)
		}
		if code := b.post("/admin/approvals/"+approvalID+"/approve", b.csrf()); code != 403 {
			t.Fatalf("helpdesk approving: status %d, want 403", code)
		}
		b.signOut()
	})

	t.Run("a second admin approves it", func(t *testing.T) {
		b.t = t
		b.welcome(e.code(t, "officer"))
		b.signIn("officer", "/admin")
		b.do(chromedp.Navigate(e.url + "/admin/approvals"))
		b.shot("approvals")
		// Approving asks for a reason and the officer's own key, bound to
		// this one request (the virtual authenticator answers).
		b.approve(approvalID, "checked: TOTP is not allowed for engineering")
		if got := b.text(".flash"); !strings.Contains(got, "approved") {
			t.Fatalf("approval not confirmed: %q / %s", got, b.text("main"))
		}
		f, err := e.svc.GetFactor(ctx, core.System, app.ID)
		if err != nil || f.State != api.FactorRevoked {
			t.Fatalf("factor after approval: %+v %v", f.State, err)
		}
	})

	t.Run("CSRF and missing step-up are refused", func(t *testing.T) {
		b.t = t
		if code := b.post("/admin/users/"+carol.ID+"/unlock", "not-the-token"); code != 403 {
			t.Fatalf("wrong CSRF token: status %d, want 403", code)
		}
		if code := b.post("/admin/users/"+carol.ID+"/unlock", ""); code != 403 {
			t.Fatalf("no CSRF token: status %d, want 403", code)
		}
		e.offset.Store(int64(6 * time.Minute)) // the sign-in's step-up is now stale
		if code := b.post("/admin/users/"+carol.ID+"/reset", b.csrf()); code != 403 {
			t.Fatalf("reset without step-up: status %d, want 403", code)
		}
		as, _, _ := e.svc.ListApprovals(ctx, core.System, api.ApprovalPending, core.PageReq{})
		if len(as) != 0 {
			t.Fatalf("a refused request changed something: %d pending approvals", len(as))
		}
	})

	t.Run("pages work at phone width and from the keyboard", func(t *testing.T) {
		b.t = t
		e.offset.Store(0)
		b.do(chromedp.EmulateViewport(390, 844), chromedp.Navigate(e.url+"/admin/users/"+carol.ID))
		if w := eval[bool](b, "document.documentElement.scrollWidth <= window.innerWidth + 1"); !w {
			wide := eval[[]string](b, `[...document.querySelectorAll("main *")].filter(el => el.getBoundingClientRect().right > window.innerWidth + 1 || el.scrollWidth > el.clientWidth + 1 && el.clientWidth > 0 && getComputedStyle(el).overflowX === "visible").slice(0, 5).map(el => el.tagName + "." + el.className + "#" + el.id)`)
			t.Fatalf("the user page scrolls sideways at 390 px: %v", wide)
		}
		b.shot("phone-user")
		eval[bool](b, "document.activeElement && document.activeElement.blur(), true")
		b.do(chromedp.KeyEvent("\t"))
		if cls := eval[string](b, "document.activeElement.className"); cls != "skip" {
			t.Fatalf("first Tab focuses %q, want the skip link", cls)
		}
	})

	recoveryScenarios(t, e, b, alice)
	adminDayScenarios(t, e, b, carol)
	appOnlyScenarios(t, e, b)
}
