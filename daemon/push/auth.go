package push

import (
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/keyfleet/keyfleet/daemon/core"
	pushkind "github.com/keyfleet/keyfleet/plugins/push"
)

// Authenticate checks a companion's request: its Keyfleet-Device header
// names an active push factor, was signed by that factor's device key
// over this request's method and path, at a time within ClockSkew of
// keyfleetd's, and was not seen before. It returns the factor. Errors
// wrap core.ErrUnauthenticated and say what to fix; none tells whether
// the factor exists.
func (h *Hub) Authenticate(r *http.Request) (core.Factor, error) {
	hv := r.Header.Get(pushkind.DeviceHeader)
	if hv == "" {
		return core.Factor{}, fmt.Errorf("%w: a companion's request needs a %s header signed by its device key", core.ErrUnauthenticated, pushkind.DeviceHeader)
	}
	fid, ms, sig, err := pushkind.ParseDeviceHeader(hv)
	if err != nil {
		return core.Factor{}, fmt.Errorf("%w: %v", core.ErrUnauthenticated, err)
	}
	now := h.now()
	if d := now.Sub(time.UnixMilli(ms)); d > h.cfg.ClockSkew.Duration || d < -h.cfg.ClockSkew.Duration {
		return core.Factor{}, fmt.Errorf("%w: the request was signed at a time %s away from keyfleetd's clock; set the device's clock right",
			core.ErrUnauthenticated, d.Round(time.Second))
	}
	svc := h.service()
	if svc == nil {
		return core.Factor{}, fmt.Errorf("%w: keyfleetd is starting", core.ErrUnavailable)
	}
	f, err := svc.DeviceFactor(r.Context(), fid)
	if err != nil && !isNotFound(err) {
		return core.Factor{}, err
	}
	pub, perr := publicKey(f)
	if err != nil || perr != nil || !pushkind.Verify(pub, pushkind.DeviceMessage(r.Method, r.URL.Path, fid, ms), sig) {
		return core.Factor{}, fmt.Errorf("%w: the device is not enrolled, its push factor is no longer active, or the signature is not its key's; enrol the companion again", core.ErrUnauthenticated)
	}
	// The header is refused for its time once that is ClockSkew old, so
	// it needs remembering until then only.
	forget := time.UnixMilli(ms).Add(h.cfg.ClockSkew.Duration)
	first := h.replay.first(fid+"/"+strconv.FormatInt(ms, 10), now, forget, h.cfg.ClockSkew.Duration)
	if first && h.board != nil { // and no other keyfleetd saw it
		ctx, cancel := boardCtx(r.Context())
		defer cancel()
		if first, err = h.board.FirstSeen(ctx, fid, ms, forget); err != nil {
			return core.Factor{}, unavailable("checking the request against those every keyfleetd saw", err)
		}
	}
	if !first {
		return core.Factor{}, fmt.Errorf("%w: this signed request was used already; sign each request afresh", core.ErrUnauthenticated)
	}
	return f, nil
}

func isNotFound(err error) bool { return err != nil && errors.Is(err, core.ErrNotFound) }

// publicKey reads the device key from a push factor's public material.
func publicKey(f core.Factor) (pub *ecdsa.PublicKey, err error) {
	var p pushkind.Public
	if err := json.Unmarshal(f.Public, &p); err != nil {
		return nil, err
	}
	return pushkind.ParsePublicKey(p.PublicKey)
}

// replayCache remembers the signed requests seen within the clock skew,
// so that a captured header cannot be sent again.
type replayCache struct {
	mu     sync.Mutex
	seen   map[string]time.Time // key → when it may be forgotten
	pruned time.Time
}

// first records key until forget and reports whether it was not seen
// before; every skew it drops what it may forget.
func (c *replayCache) first(key string, now, forget time.Time, skew time.Duration) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if now.Sub(c.pruned) > skew {
		for k, until := range c.seen {
			if now.After(until) {
				delete(c.seen, k)
			}
		}
		c.pruned = now
	}
	if until, ok := c.seen[key]; ok && !now.After(until) {
		return false
	}
	c.seen[key] = forget
	return true
}

// DeviceStillActive reports whether factor id still verifies (for a long
// stream, checked now and then): not revoked, suspended or its user
// disabled.
func (h *Hub) DeviceStillActive(ctx context.Context, id string) bool {
	svc := h.service()
	if svc == nil {
		return false
	}
	_, err := svc.DeviceFactor(ctx, id)
	return err == nil || !isNotFound(err)
}
