package web

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/core"
)

// The web push companion. /me/push adds this browser as a push factor of
// the signed-in user (a fresh proof with their key, then a WebCrypto
// P-256 key that cannot be exported, confirmed by its first signature)
// and shows the pushes it receives; /push/ is the same companion without
// a session, the installable app's start page: everything it does is
// authenticated by the device key (the API's /v1/push routes), so it
// keeps working after the dashboard session ends. static/push.js does
// the work in the browser.

// pushKind is the factor kind of push companions.
const pushKind = "push"

type pushPage struct {
	// Enabled is false when this keyfleetd has no push kind.
	Enabled bool
	// Devices are the signed-in user's push companions.
	Devices []core.Factor
	// Enrolment, Nonce and Label are an enrolment this page confirms
	// with the new key (after "Use this browser").
	Enrolment, Nonce, Label string
}

func (h *handler) pushEnabled() bool {
	info, ok := h.svc.KindInfo(pushKind)
	return ok && info.OutOfBand
}

// pushPage shows the companion and the user's push companions.
func (h *handler) pushPage(rq *request) error {
	d, err := h.pushData(rq)
	if err != nil {
		return err
	}
	h.render(rq, http.StatusOK, "push", "Push approvals", d)
	return nil
}

func (h *handler) pushData(rq *request) (pushPage, error) {
	d := pushPage{Enabled: h.pushEnabled()}
	if !rq.sess.SignedIn() || !d.Enabled {
		return d, nil
	}
	fs, _, err := h.svc.ListFactors(rq.ctx, rq.self(), core.FactorFilter{UserID: rq.user.ID, Kind: pushKind}, core.PageReq{Limit: core.MaxPageSize})
	d.Devices = slices.DeleteFunc(fs, func(f core.Factor) bool { return f.State == api.FactorRevoked })
	return d, err
}

// pushBegin opens a push enrolment for the user (the form carries the
// proof with their key) and shows the page that confirms it with this
// browser's new key.
func (h *handler) pushBegin(rq *request) error {
	if !h.pushEnabled() {
		return &pageError{Status: http.StatusNotFound, Msg: "Push approvals are not enabled on this keyfleet. Ask your administrator."}
	}
	label := strings.TrimSpace(rq.r.PostFormValue("label"))
	if label == "" {
		label = "Web companion"
	}
	e, _, err := h.svc.CreateEnrolment(rq.ctx, rq.selfEnrol(), api.CreateEnrolment{User: rq.user.ID, Kind: pushKind})
	if err != nil {
		return err
	}
	var params map[string]string
	if json.Unmarshal(e.Params, &params) != nil || params["nonce"] == "" {
		return &pageError{Status: http.StatusConflict, Msg: "This keyfleet's push kind gave nothing to sign. Ask your administrator to update keyfleet-plugin-push."}
	}
	d, err := h.pushData(rq)
	if err != nil {
		return err
	}
	d.Enrolment, d.Nonce, d.Label = e.ID, params["nonce"], label
	h.render(rq, http.StatusOK, "push", "Push approvals", d)
	return nil
}

type pushConfirm struct {
	Enrolment string          `json:"enrolment"`
	Label     string          `json:"label"`
	Payload   json.RawMessage `json:"payload"`
}

// pushConfirm completes the enrolment with the browser's first signed
// answer (its public key and the signature over the enrolment's nonce).
func (h *handler) pushConfirm(rq *request) error {
	var in pushConfirm
	if err := readJSON(rq, &in); err != nil {
		return err
	}
	e, err := h.svc.GetEnrolment(rq.ctx, rq.self(), in.Enrolment)
	if err != nil || e.UserID != rq.user.ID || e.Kind != pushKind {
		return &pageError{Status: http.StatusConflict, Msg: "That push registration is not yours or has ended. Start again."}
	}
	f, err := h.svc.CompleteEnrolment(rq.ctx, rq.self(), e.ID, api.CompleteEnrolment{Label: in.Label, Payload: in.Payload})
	if err != nil {
		return err
	}
	h.log.Info("web push companion registered", "user_id", f.UserID, "factor_id", f.ID, "request_id", rq.id)
	writeJSON(rq.w, http.StatusOK, map[string]any{"factor_id": f.ID, "label": f.Label, "user": rq.user.Username})
	return nil
}

// companionPage is the installed app's start page: the companion alone.
func (h *handler) companionPage(rq *request) error {
	h.render(rq, http.StatusOK, "push", "Push approvals", pushPage{Enabled: h.pushEnabled()})
	return nil
}

// manifest makes /push/ installable as an app (Web App Manifest).
func manifest(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/manifest+json")
	json.NewEncoder(w).Encode(map[string]any{
		"name": "keyfleet push approvals", "short_name": "keyfleet push", "id": "/push/",
		"start_url": "/push/", "scope": "/push/", "display": "standalone",
		"background_color": "#f6f7f9", "theme_color": "#14283d",
		"description": "Approve keyfleet sign-ins: pick the number the sign-in screen shows.",
		"icons": []map[string]string{
			{"src": "/static/push-192.png", "sizes": "192x192", "type": "image/png"},
			{"src": "/static/push-512.png", "sizes": "512x512", "type": "image/png"},
		},
	})
}

// serviceWorker serves the companion's service worker from /push/, so
// that its scope covers the app.
func serviceWorker(w http.ResponseWriter, _ *http.Request) {
	b, err := staticFS.ReadFile("static/push-sw.js")
	if err != nil {
		http.Error(w, "missing", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
	w.Write(b)
}
