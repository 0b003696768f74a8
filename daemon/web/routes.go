package web

import (
	"io/fs"
	"net/http"
)

// routes lists every page and action with who may reach it. Every POST
// checks the CSRF token; the sensitive ones also need a step-up, and those
// the domain holds to a fresh proof (approvals, policy, passes, adding or
// removing one's own factor, recovery codes) carry one bound to the
// action instead (proof.go).
func (h *handler) routes() {
	static, _ := fs.Sub(staticFS, "static")
	files := http.FileServerFS(static)
	h.mux.Handle("GET /static/", http.StripPrefix("/static/", cacheFor(files)))

	h.handle("GET /", anyone, (*handler).home)
	h.handle("GET /signin", anyone, (*handler).signInPage)
	h.handle("POST /signin/begin", anyone|jsonAPI, (*handler).signInBegin)
	h.handle("POST /signin/finish", anyone|jsonAPI, (*handler).signInFinish)
	h.handle("GET /signin/app", anyone, (*handler).signInAppPage)
	h.handle("POST /signin/app", anyone, (*handler).signInApp)
	h.handle("GET /welcome", anyone, (*handler).welcomePage)
	h.handle("POST /welcome/begin", anyone|jsonAPI, (*handler).welcomeBegin)
	h.handle("POST /welcome/finish", anyone|jsonAPI, (*handler).welcomeFinish)
	h.handle("POST /welcome/app", anyone, (*handler).welcomeApp)
	h.handle("POST /welcome/app/confirm", anyone, (*handler).welcomeAppConfirm)
	h.handle("POST /signout", member, (*handler).signOut)
	h.handle("POST /stepup/begin", member|jsonAPI, (*handler).stepUpBegin)
	h.handle("POST /stepup/finish", member|jsonAPI, (*handler).stepUpFinish)
	h.handle("POST /proof/begin", member|jsonAPI, (*handler).proofBegin)

	h.handle("GET /me", member, (*handler).mePage)
	h.handle("POST /me/keys/begin", member|jsonAPI, (*handler).keyBegin)
	h.handle("POST /me/keys/finish", member|jsonAPI, (*handler).keyFinish)
	h.handle("POST /me/totp", member, (*handler).totpBegin)
	h.handle("POST /me/totp/confirm", member, (*handler).totpConfirm)
	h.handle("POST /me/factors/{id}/rename", member, (*handler).renameOwn)
	h.handle("POST /me/factors/{id}/remove", member, (*handler).removeOwn)
	h.handle("POST /me/recovery-codes", member, (*handler).regenerateCodes)
	h.handle("GET /me/push", member, (*handler).pushPage)
	h.handle("POST /me/push", member, (*handler).pushBegin)
	h.handle("POST /me/push/confirm", member|jsonAPI, (*handler).pushConfirm)
	h.handle("GET /push/{$}", anyone, (*handler).companionPage)
	h.mux.Handle("GET /push", http.RedirectHandler("/push/", http.StatusMovedPermanently))
	h.mux.HandleFunc("GET /push/manifest.webmanifest", manifest)
	h.mux.HandleFunc("GET /push/sw.js", serviceWorker)

	h.handle("GET /tokens", member, (*handler).tokensPage)
	h.handle("POST /tokens", member, (*handler).createToken)
	h.handle("POST /tokens/{id}/revoke", member, (*handler).revokeToken)
	h.handle("GET /admin", staff, (*handler).overview)
	h.handle("GET /admin/users", staff, (*handler).usersList)
	h.handle("GET /admin/users/new", staff, (*handler).newUserPage)
	h.handle("POST /admin/users", staff, (*handler).createUser)
	h.handle("GET /admin/users/{id}", staff, (*handler).userDetail)
	h.handle("POST /admin/users/{id}/edit", staff, (*handler).editUser)
	h.handle("POST /admin/users/{id}/disable", staff|stepUp, (*handler).requestDisable)
	h.handle("POST /admin/users/{id}/enable", staff, (*handler).enableUser)
	h.handle("POST /admin/users/{id}/enrolment", staff, (*handler).createCode)
	h.handle("POST /admin/users/{id}/unlock", staff, (*handler).unlock)
	h.handle("POST /admin/users/{id}/reset", staff|stepUp, (*handler).requestReset)
	h.handle("POST /admin/users/{id}/recovery", staff|stepUp, (*handler).openRecovery)
	h.handle("POST /admin/users/{id}/recovery-unlock", staff, (*handler).clearRecoveryLock)
	h.handle("POST /admin/users/{id}/exemption", staff|stepUp, (*handler).requestExemption)
	h.handle("POST /admin/recovery/{id}/code", staff|stepUp, (*handler).confirmWithCode)
	h.handle("POST /admin/recovery/{id}/identity-check", staff|stepUp, (*handler).identityCheck)
	h.handle("POST /admin/recovery/{id}/pass", staff, (*handler).issuePass)
	h.handle("POST /admin/users/{id}/pass", staff, (*handler).issueOnboardingPass)
	h.handle("POST /admin/recovery/{id}/cancel", staff, (*handler).cancelRecovery)
	h.handle("POST /admin/factors/{id}/revoke", staff|stepUp, (*handler).requestRevoke)
	h.handle("POST /admin/factors/{id}/{action}", staff, (*handler).factorAction)
	h.handle("POST /admin/devices/{id}/lost", staff|stepUp, (*handler).deviceLost)
	h.handle("GET /admin/devices", staff, (*handler).devices)
	h.handle("GET /admin/activity", staff, (*handler).activity)
	h.handle("GET /admin/approvals", staff, (*handler).approvals)
	h.handle("GET /admin/recovery", staff, (*handler).recoveryQueue)
	h.handle("POST /admin/approvals/{id}/{decision}", staff, (*handler).decide)
	h.handle("GET /admin/policy", staff, (*handler).policy)
	h.handle("POST /admin/policy/dry-run", staff, (*handler).dryRun)
	h.handle("POST /admin/policy/check", staff|jsonAPI, (*handler).checkPolicy)
	h.handle("POST /admin/policy/apply", staff, (*handler).applyPolicy)
	h.handle("GET /admin/audit", staff, (*handler).auditLog)
	h.handle("GET /admin/audit/export", staff, (*handler).auditExport)
}

// cacheFor lets browsers keep the embedded static files for an hour.
func cacheFor(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		next.ServeHTTP(w, r)
	})
}
