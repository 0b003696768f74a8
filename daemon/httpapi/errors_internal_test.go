package httpapi

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/keyfleet/keyfleet/daemon/core"
	"github.com/keyfleet/keyfleet/daemon/store"
)

func TestAFullDiskIsA503StorageFullWithRetryAfter(t *testing.T) {
	full := fmt.Errorf("creating user: %w", &store.StorageFullError{Dir: "/var/lib/keyfleet/store", Free: 1 << 20, Reserve: 128 << 20})
	h := &Handler{log: slog.New(slog.DiscardHandler)}
	rec := httptest.NewRecorder()
	h.fail(rec, httptest.NewRequest("POST", "/v1/users", nil), full)
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") != "30" {
		t.Fatalf("answered %d, Retry-After %q", rec.Code, rec.Header().Get("Retry-After"))
	}
	if p := problemFor(full); p.Type != "/problems/storage-full" {
		t.Fatalf("mapped to %s", p.Type)
	}
	// Another unavailable store keeps its own problem and no Retry-After.
	other := fmt.Errorf("%w: a write to disk failed; restart keyfleetd", core.ErrUnavailable)
	if p := problemFor(other); p.Type != "/problems/unavailable" {
		t.Fatalf("an unavailable store mapped to %s", p.Type)
	}
	if _, ok := retryAfter(other); ok {
		t.Fatal("an unavailable store says when to retry")
	}
}
