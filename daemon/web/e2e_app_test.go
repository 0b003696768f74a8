package web_test

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/core"
)

// oathtool computes the six-digit TOTP code of a base32 seed for the
// time step step steps from now (-1, 0 or +1: the verifier accepts one
// either side), with Debian's oathtool, an implementation keyfleet shares
// no code with. Each use of an app must take a later step than the last
// (replay protection), so a story takes -1, then 0, then +1.
func oathtool(t *testing.T, seed string, step int) string {
	t.Helper()
	bin, err := exec.LookPath("oathtool")
	if err != nil {
		t.Fatal("oathtool is not installed: the TOTP browser test checks codes with it (apt-get install oathtool)")
	}
	if next := time.Now().Truncate(30 * time.Second).Add(30 * time.Second); step < 0 && time.Until(next) < 2*time.Second {
		time.Sleep(time.Until(next)) // the previous step must still be in the window when keyfleetd checks it
	}
	at := time.Now().Add(time.Duration(step) * 30 * time.Second).UTC().Format("2006-01-02 15:04:05 UTC")
	out, err := exec.Command(bin, "--totp", "-b", "--now", at, seed).Output()
	if err != nil {
		t.Fatalf("oathtool: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// appOnlyScenarios continue adminDayScenarios (the policy now lets people
// without a key sign in to their own pages with their app and a recovery
// code): tom has only an authenticator app. He gets it with an access
// pass at /welcome, signs in with it, makes new recovery codes and is
// kept out of the dashboard. He loses his phone; the helpdesk records an
// identity check that a second officer approves; tom redeems the new pass
// in the browser and enrols a new app; every code comes from oathtool.
func appOnlyScenarios(t *testing.T, e *env, b *browser) {
	ctx := context.Background()
	tom := e.createUser(t, "tom", []string{"sales"}, []string{api.RoleHelpdesk})
	var seed string
	var codes []string

	t.Run("a person with no key adds an authenticator app with an access pass", func(t *testing.T) {
		b.t = t
		pass := e.onboardingPass(t, tom.ID)
		seed = b.welcomeApp(pass)
		b.do(chromedp.SetValue("#code", oathtool(t, seed, -1)), chromedp.SetValue("#label", "Phone"))
		b.submit("#totp-confirm button", "/welcome/app/confirm")
		codes = eval[[]string](b, `[...document.querySelectorAll("#recovery-codes li")].map(li => li.textContent.trim())`)
		if len(codes) != 10 {
			t.Fatalf("a first app came with %d recovery codes: %s", len(codes), b.text("main"))
		}
		b.shot("app-recovery-codes")
		b.submit("#continue-codes", "/signin/app")
	})

	t.Run("he signs in to his own page with the app and a recovery code, from the keyboard, and never reaches the dashboard", func(t *testing.T) {
		b.t = t
		b.shot("signin-app")
		b.do(chromedp.WaitVisible("#app-username"))
		if got := eval[string](b, `document.getElementById("app-username").value`); got != "tom" {
			t.Fatalf("the sign-in page does not carry the username on: %q", got)
		}
		b.appSignIn("tom", oathtool(t, seed, 0), codes[0], "/me")
		if got := b.text(".flash"); !strings.Contains(got, "9 recovery codes left") {
			t.Fatalf("after app sign-in: %q", got)
		}
		if got := b.text("#no-key"); !strings.Contains(got, "no security key") {
			t.Fatalf("the page does not say the app confirms actions: %q", got)
		}
		b.shot("app-self-service")
		// tom is helpdesk staff: the dashboard still wants his key.
		b.do(chromedp.Navigate(e.url + "/admin"))
		if got := b.text("main"); !strings.Contains(got, "takes security keys only") {
			t.Fatalf("an app session reached the dashboard: %s", got)
		}
		if code := b.postForm("/admin/users/"+tom.ID+"/unlock", map[string]string{"reason": "x"}); code != 403 {
			t.Fatalf("an app session posting to the dashboard: status %d, want 403", code)
		}
	})

	t.Run("he makes new recovery codes with his app's code", func(t *testing.T) {
		b.t = t
		b.do(chromedp.Navigate(e.url+"/me"), chromedp.WaitVisible("#pc-codes"), chromedp.SetValue("#pc-codes", oathtool(t, seed, 1)))
		b.submit(`form[action="/me/recovery-codes"] button`, "/me/recovery-codes")
		codes = eval[[]string](b, `[...document.querySelectorAll("#recovery-codes li")].map(li => li.textContent.trim())`)
		if len(codes) != 10 {
			t.Fatalf("new codes: %q / %s", codes, b.text("main"))
		}
		b.signOut()
	})

	var caseID, pass string
	t.Run("he loses his phone; an identity check approved by a second officer confirms him", func(t *testing.T) {
		b.t = t
		b.signIn("helpdesk1", "/admin")
		b.do(chromedp.Navigate(e.url+"/admin/users/"+tom.ID), chromedp.SetValue("#rc-reason", "phone stolen"), chromedp.Click("#rc-suspend"))
		b.submit("#open-recovery button", "/admin/users/"+tom.ID)
		cs, _, _ := e.svc.ListRecovery(ctx, core.System, core.RecoveryFilter{UserID: tom.ID}, core.PageReq{})
		caseID = cs[len(cs)-1].ID
		b.do(chromedp.SetValue("#method-"+caseID, "video_call_manager"), chromedp.SetValue("#detail-"+caseID, "video call with his manager, badge shown"))
		b.submit(`form[action="/admin/recovery/`+caseID+`/identity-check"] button`, "/admin/users/"+tom.ID)
		b.signOut()
		b.signIn("officer", "/admin")
		b.do(chromedp.Navigate(e.url + "/admin/approvals"))
		check := e.pending(t, api.ActionRecoveryIdentity, caseID)
		if got := b.text("#preview-" + check.ID); !strings.Contains(got, "video call with his manager") {
			t.Fatalf("the identity check's preview: %q", got)
		}
		b.approve(check.ID, "manager confirmed on a call I placed")
		if c, _ := e.svc.GetRecovery(ctx, core.System, caseID); c.State != api.CaseConfirmed {
			t.Fatalf("the case after approval: %s", c.State)
		}
	})

	t.Run("tom is staff: his pass waits for another officer, who is shown it once", func(t *testing.T) {
		b.t = t
		b.do(chromedp.Navigate(e.url + "/admin/users/" + tom.ID))
		b.submit(`form[action="/admin/recovery/`+caseID+`/pass"] button`, "/admin/approvals")
		if got := b.text(".flash"); !strings.Contains(got, "needs a second officer") || strings.Contains(b.text("main"), "kfp-") {
			t.Fatalf("a staff account's pass shown to whom asked for it: %q", got)
		}
		b.signOut()
		b.signIn("admin1", "/admin")
		b.do(chromedp.Navigate(e.url + "/admin/approvals"))
		req := e.pending(t, api.ActionRecoveryPass, "")
		if got := b.text("#preview-" + req.ID); !strings.Contains(got, "shown once, to you") {
			t.Fatalf("the pass request's preview: %q", got)
		}
		b.approve(req.ID, "tom's manager confirmed; I hand it over in person")
		if pass = strings.TrimSpace(b.text("#approved-pass")); !strings.HasPrefix(pass, "kfp-") {
			t.Fatalf("no pass for the approver: %s", b.text("main"))
		}
		b.shot("approved-pass")
		b.do(chromedp.Navigate(e.url + "/admin/approvals"))
		b.waitPath("/admin/approvals")
		if strings.Contains(b.text("main"), pass) {
			t.Fatal("the pass is shown again")
		}
		b.signOut()
	})

	t.Run("he redeems the pass in the browser, enrols a new app and signs in with it", func(t *testing.T) {
		b.t = t
		old := seed
		seed = b.welcomeApp(pass)
		if seed == old {
			t.Fatal("the new app got the lost phone's seed")
		}
		b.do(chromedp.SetValue("#code", oathtool(t, seed, -1)), chromedp.SetValue("#label", "New phone"))
		b.submit("#totp-confirm button", "/signin/app")
		c, err := e.svc.GetRecovery(ctx, core.System, caseID)
		if err != nil || c.State != api.CaseClosed || c.NewFactorID == "" {
			t.Fatalf("the case after the new app: %+v %v", c, err)
		}
		for _, id := range c.LostFactorIDs {
			if f, _ := e.svc.GetFactor(ctx, core.System, id); f.State != api.FactorRevoked {
				t.Fatalf("the lost phone's app is %s", f.State)
			}
		}
		b.appSignIn("tom", oathtool(t, old, 1), codes[0], "/signin/app") // the lost phone no longer works
		// A wrong recovery code is refused as a wrong app code is.
		b.appSignIn("tom", oathtool(t, seed, 0), "aaaaa-bbbbb", "/signin/app")
		if got := b.text("#app-error"); !strings.Contains(got, "not accepted") {
			t.Fatalf("a wrong recovery code: %q", got)
		}
		b.appSignIn("tom", oathtool(t, seed, 1), codes[1], "/me")
		if got := b.text("main"); !strings.Contains(got, "New phone") {
			t.Fatalf("tom's page after recovery: %s", got)
		}
		b.signOut()
	})
}

// onboardingPass issues an access pass for a person's first factor, as
// the helpdesk does from their page (not for security keys only).
func (e *env) onboardingPass(t *testing.T, userID string) string {
	t.Helper()
	p, _, err := e.svc.IssueOnboardingPass(context.Background(), core.System, userID, api.IssuePass{TTL: "1h", Uses: 1})
	if err != nil {
		t.Fatal(err)
	}
	return p.Code
}

// welcomeApp enters a pass at /welcome's authenticator-app form and
// returns the seed the page shows once.
func (b *browser) welcomeApp(pass string) string {
	b.t.Helper()
	b.do(chromedp.Navigate(b.url+"/welcome"), chromedp.WaitVisible("#app-code"), chromedp.SetValue("#app-code", pass))
	b.submit("#welcome-app button", "/welcome/app")
	seed := strings.TrimSpace(eval[string](b, `(document.querySelector("code.secret") || {}).textContent || ""`))
	if seed == "" {
		b.t.Fatalf("no seed on the page: %s", b.text("main"))
	}
	b.shot("welcome-app")
	return strings.ReplaceAll(seed, " ", "")
}

// appSignIn signs in with the app from the keyboard alone: type into
// each field, Enter in the last; lands on landing.
func (b *browser) appSignIn(user, code, recovery, landing string) {
	b.t.Helper()
	b.do(chromedp.Navigate(b.url+"/signin/app"), chromedp.WaitVisible("#app-username"), chromedp.Clear("#app-username"))
	eval[bool](b, "window.__kfLeaving = true")
	b.do(chromedp.SendKeys("#app-username", user), chromedp.SendKeys("#app-code", code), chromedp.SendKeys("#app-recovery", recovery+"\r"))
	b.settle(`!window.__kfLeaving && location.pathname.startsWith(`+jsString(landing)+`)`, landing+" after an app sign-in as "+user)
}
