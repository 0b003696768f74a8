package web_test

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	pushkind "github.com/keyfleet/keyfleet/plugins/push"
)

// TestAPushOnlyPersonSignsInWithThePage: pat holds only a push companion
// (a phone, played by a Go companion on keyfleetd's API). From the
// sign-in page she follows the push link, types her name and a recovery
// code, reads the number the page shows, picks it on the phone, and is
// on her own page, which says what a push cannot confirm.
func TestAPushOnlyPersonSignsInWithThePage(t *testing.T) {
	exe := chromium(t)
	e, b := startPushBrowserEnv(t, exe)
	e.applyPolicy(t, pushSignInPolicy)
	_, phone, codes := e.pushOnlyPerson(t, "pat", nil)

	b.do(chromedp.Navigate(e.url + "/signin"))
	b.settle(`document.querySelector('a[href="/signin/push"]') !== null`, "the sign-in page's push link")
	eval[bool](b, "window.__kfLeaving = true")
	b.do(chromedp.Click(`a[href="/signin/push"]`))
	b.settle(`!window.__kfLeaving && location.pathname.startsWith("/signin/push")`, "the push sign-in page")
	b.shot("signin-push")
	b.do(chromedp.SetValue("#push-username", "pat"), chromedp.SetValue("#push-recovery", codes[0]))
	eval[bool](b, "window.__kfLeaving = true")
	b.do(chromedp.Click("#signin-push button[type=submit]"))
	b.settle(`!document.getElementById("push-numbers").hidden`, "the number to pick")
	number := strings.TrimSpace(b.text("#push-numbers .push-number"))
	if got := b.text("#live"); !strings.Contains(got, "pick "+number) {
		t.Fatalf("the page does not say which number to pick: %q", got)
	}
	b.shot("signin-push-number")
	phone.answer(deliveryFor(t, phone.pending(10*time.Second), number), number, pushkind.Approve)
	b.settle(`!window.__kfLeaving && location.pathname.startsWith("/me")`, "pat's page after the push")
	if got := b.text(".flash"); !strings.Contains(got, "signed in with a push") || !strings.Contains(got, "9 recovery codes left") {
		t.Fatalf("after the push sign-in: %q", got)
	}
	if got := b.text("#push-only"); !strings.Contains(got, "A push confirms no action") {
		t.Fatalf("pat's page does not say what a push cannot confirm: %q", got)
	}
	b.shot("push-self-service")
}
