package web

import (
	"net/http"
	"time"
)

// cookieName is the session cookie. With Secure on it carries the
// __Host- prefix, so the browser accepts it only over HTTPS, for this
// host alone and path /.
func (h *handler) cookieName() string {
	if h.cfg.Secure {
		return "__Host-keyfleet"
	}
	return "keyfleet"
}

// loadSession finds the browser's session, or starts an anonymous one
// (with a CSRF token) when there is none or it has expired.
func (h *handler) loadSession(rq *request) {
	now := h.now()
	if c, err := rq.r.Cookie(h.cookieName()); err == nil && c.Value != "" {
		key := keyOf(c.Value)
		if s, ok := h.cfg.Sessions.Load(key, now); ok && now.Before(h.expiry(s)) {
			rq.key, rq.sess = key, s
			rq.sess.LastSeen = now
			return
		}
	}
	rq.sess, rq.fresh = h.newSession(), true
}

func (h *handler) newSession() Session {
	now := h.now()
	return Session{CSRF: randomToken(), Created: now, LastSeen: now}
}

// keep saves the session and, for a new one, sets its cookie. It runs
// after the handler, so nothing may have been written yet when a cookie
// must be set: handlers that start sessions call issue first.
func (h *handler) keep(rq *request) {
	if rq.fresh {
		return // issue was not called: an anonymous visit that needs no session
	}
	rq.sess.Expires = h.expiry(rq.sess)
	if err := h.cfg.Sessions.Save(rq.key, rq.sess); err != nil {
		h.log.Error("saving web session", "request_id", rq.id, "err", err)
	}
}

// issue gives the request a new session id (and cookie): on the first
// visit that needs one, and on every sign-in, so an id known before
// sign-in is worthless after it (session fixation).
func (h *handler) issue(rq *request) {
	if !rq.fresh {
		h.cfg.Sessions.Delete(rq.key)
	}
	value := randomToken()
	rq.key, rq.fresh = keyOf(value), false
	rq.sess.Expires = h.expiry(rq.sess)
	http.SetCookie(rq.w, &http.Cookie{
		Name: h.cookieName(), Value: value, Path: "/", HttpOnly: true, Secure: h.cfg.Secure,
		SameSite: http.SameSiteStrictMode, MaxAge: int(h.cfg.AbsoluteTimeout / time.Second),
	})
}

// endSession forgets the session and clears the cookie.
func (h *handler) endSession(rq *request) {
	h.cfg.Sessions.Delete(rq.key)
	http.SetCookie(rq.w, &http.Cookie{Name: h.cookieName(), Value: "", Path: "/", HttpOnly: true, Secure: h.cfg.Secure,
		SameSite: http.SameSiteStrictMode, MaxAge: -1})
	rq.sess, rq.fresh = h.newSession(), true
}
