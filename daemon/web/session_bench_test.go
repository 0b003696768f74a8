package web

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// BenchmarkPagesWithAnonymousSessions measures the pages while the session
// store holds many anonymous sessions, as after a flood of GET /welcome
// from clients that never come back: a new visitor (whose first page
// starts an anonymous session, evicting one when the store is full) and a
// returning visitor. The cost must not grow with the number of sessions
// held: the store's one lock is held for the whole of a Save, so a slow
// Save delays every page served at the same time.
func BenchmarkPagesWithAnonymousSessions(b *testing.B) {
	for _, n := range []int{0, 100_000} {
		b.Run(fmt.Sprintf("sessions=%d/new-visitor", n), func(b *testing.B) {
			h := filledHandler(b, n)
			for b.Loop() {
				getPage(b, h, "/welcome", nil)
			}
		})
		b.Run(fmt.Sprintf("sessions=%d/returning-visitor", n), func(b *testing.B) {
			h := filledHandler(b, n)
			cookie := getPage(b, h, "/signin", nil)
			for b.Loop() {
				getPage(b, h, "/signin", cookie)
			}
		})
	}
}

// filledHandler is the pages with n anonymous sessions in their store.
func filledHandler(b *testing.B, n int) *handler {
	b.Helper()
	h := newTestHandler(b)
	now := time.Now()
	for i := range n {
		s := Session{CSRF: randomToken(), Created: now, LastSeen: now, Expires: now.Add(30 * time.Minute)}
		if err := h.cfg.Sessions.Save(keyOf(fmt.Sprint("flood-", i)), s); err != nil {
			b.Fatal(err)
		}
	}
	return h
}

// getPage GETs path with the cookie (none when nil) and returns the session
// cookie the page set, or the one sent.
func getPage(b *testing.B, h *handler, path string, cookie *http.Cookie) *http.Cookie {
	req := httptest.NewRequest("GET", "https://keyfleet.test"+path, nil)
	if cookie != nil {
		req.AddCookie(cookie)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		b.Errorf("GET %s: %d", path, rec.Code)
	}
	if c := rec.Result().Cookies(); len(c) > 0 {
		return c[0]
	}
	return cookie
}

// BenchmarkMemoryStoreNewAnonymousSessionWhenFull is the store alone: one
// new anonymous session saved while the store holds its cap of them, so
// each Save evicts the oldest. The cost must not depend on the cap.
func BenchmarkMemoryStoreNewAnonymousSessionWhenFull(b *testing.B) {
	for _, n := range []int{1_000, 100_000, 1_000_000} {
		b.Run(fmt.Sprintf("held=%d", n), func(b *testing.B) {
			m := &MemoryStore{Max: 2 * n, MaxAnonymous: n}
			now := time.Now()
			s := Session{CSRF: "c", Created: now, LastSeen: now, Expires: now.Add(30 * time.Minute)}
			for i := range n {
				m.Save(keyOf(fmt.Sprint(i)), s)
			}
			keys := make([]SessionKey, 1<<16)
			for i := range keys {
				keys[i] = keyOf(fmt.Sprint("new", i))
			}
			i := 0
			for b.Loop() {
				m.Save(keys[i%len(keys)], s)
				i++
			}
			if m.Len() != n {
				b.Fatalf("%d held, want %d", m.Len(), n)
			}
		})
	}
}
