package push

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/keyfleet/keyfleet/daemon/core"
	pushkind "github.com/keyfleet/keyfleet/plugins/push"
)

// TestACompanionsRequestsAreAuthenticatedByItsKey walks what someone who
// is not the device tries, to open its channel or answer for it.
func TestACompanionsRequestsAreAuthenticatedByItsKey(t *testing.T) {
	e := newEnv(t, Config{})
	c := e.enrol(e.user("dora"), nil)
	stranger, _ := pushkind.NewDevice(nil)
	stranger.FactorID = c.dev.FactorID // claims dora's factor, holds another key
	captured := c.request("GET", "/v1/push/stream")
	if _, err := e.hub.Authenticate(captured); err != nil {
		t.Fatalf("the device's own request: %v", err)
	}
	sign := func(d *pushkind.Device, method, path string, at time.Time) string {
		sig, _ := pushkind.Sign(nil, d.Key, pushkind.DeviceMessage(method, path, d.FactorID, at.UnixMilli()))
		return pushkind.FormatDeviceHeader(d.FactorID, at.UnixMilli(), sig)
	}
	tests := []struct {
		name, header string
		path         string
	}{
		{"no header", "", "/v1/push/stream"},
		{"a malformed header", "factor=x", "/v1/push/stream"},
		{"an unknown factor", strings.Replace(sign(c.dev, "GET", "/v1/push/stream", e.clock.Now()), c.dev.FactorID, "fac_nobody", 1), "/v1/push/stream"},
		{"another key claiming the factor", sign(stranger, "GET", "/v1/push/stream", e.clock.Now()), "/v1/push/stream"},
		{"a header signed for another route", sign(c.dev, "GET", "/v1/push/pending", e.clock.Now()), "/v1/push/stream"},
		{"a captured header sent again", captured.Header.Get(pushkind.DeviceHeader), "/v1/push/stream"},
		{"a header signed ten minutes ago", sign(c.dev, "GET", "/v1/push/stream", e.clock.Now().Add(-10*time.Minute)), "/v1/push/stream"},
		{"a header signed in the future", sign(c.dev, "GET", "/v1/push/stream", e.clock.Now().Add(10*time.Minute)), "/v1/push/stream"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := c.request("GET", tt.path)
			r.Header.Set(pushkind.DeviceHeader, tt.header)
			if tt.header == "" {
				r.Header.Del(pushkind.DeviceHeader)
			}
			if _, err := e.hub.Authenticate(r); !errors.Is(err, core.ErrUnauthenticated) {
				t.Fatalf("err = %v, want unauthenticated", err)
			}
		})
	}
	t.Run("a suspended factor's device", func(t *testing.T) {
		if _, err := e.svc.SuspendFactor(context.Background(), core.System, c.dev.FactorID, "lost phone"); err != nil {
			t.Fatal(err)
		}
		if _, err := e.hub.Authenticate(c.request("GET", "/v1/push/stream")); !errors.Is(err, core.ErrUnauthenticated) {
			t.Fatalf("err = %v, want unauthenticated", err)
		}
		if e.hub.DeviceStillActive(context.Background(), c.dev.FactorID) {
			t.Fatal("a suspended factor's stream would stay open")
		}
	})
}
