package core_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/core"
	"github.com/keyfleet/keyfleet/daemon/core/coretest"
	"github.com/keyfleet/keyfleet/daemon/store"
	"github.com/keyfleet/keyfleet/plugins/sdk"
)

// fido2Kind is the test kind under the name of the FIDO2 kind, as
// hardware: a factor of it on a key means the key has a FIDO2 application.
type fido2Kind struct{ coretest.Kind }

func (fido2Kind) Describe(context.Context) (sdk.Info, error) {
	return sdk.Info{Kind: "fido2", DisplayName: "FIDO2 test key", Hardware: true}, nil
}

func newWipeEnv(t *testing.T) *env {
	t.Helper()
	st, err := store.Open(store.Options{InMemory: true, EncryptionKey: make([]byte, 32)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return envWithKinds(t, st, coretest.Kind{}, coretest.Key{}, fido2Kind{})
}

// returnedKey enrols a test factor (and, with fido2, a FIDO2 factor) for
// user on key serial, gives them another factor, and returns the key: its
// factors are revoked at once.
func (e *env) returnedKey(desk core.Principal, user, serial string, fido2 bool) string {
	e.t.Helper()
	ctx := context.Background()
	onKey, err := e.enrolFor(desk, user, serial)
	if err != nil {
		e.t.Fatal(err)
	}
	if fido2 {
		en, _, err := e.svc.CreateEnrolment(ctx, desk, api.CreateEnrolment{User: user, Kind: "fido2"})
		if err != nil {
			e.t.Fatal(err)
		}
		if _, err := e.svc.CompleteEnrolment(ctx, desk, en.ID, api.CompleteEnrolment{Payload: coretest.EnrolPayload(en.Challenge, "F-"+user, serial)}); err != nil {
			e.t.Fatal(err)
		}
	}
	e.enrol(user, "")
	if _, err := e.svc.ReturnDevice(ctx, desk, onKey.DeviceID, api.ReturnDevice{Reason: user + " left"}); err != nil {
		e.t.Fatal(err)
	}
	return onKey.DeviceID
}

// TestAKeyGoesBackInStockOnlyWithBothAppletsReset: carol's key carried a
// PIV and a FIDO2 factor. An agent that reports only its PIV applet reset,
// or claims the key has no FIDO2 application, leaves it returned (her
// passkeys for other sites would go to the next holder); a report of both
// resets puts it in stock, and the audit record says what was reset.
func TestAKeyGoesBackInStockOnlyWithBothAppletsReset(t *testing.T) {
	e := newWipeEnv(t)
	ctx := context.Background()
	desk := e.principal(e.admin, "desk-it", api.RoleEnroller)
	e.principal(e.admin, "carol")
	id := e.returnedKey(desk, "carol", "K-600", true)
	head := e.auditHead()
	if _, err := e.svc.CheckDeviceWipe(ctx, desk, id, api.DeviceWipe{PIV: true, FIDO2: api.FIDO2Absent}); !errors.Is(err, core.ErrInvalid) {
		t.Fatalf("asking to wipe it as a key without FIDO2: %v; want a refusal before the agent touches it", err)
	}
	if _, err := e.svc.CheckDeviceWipe(ctx, desk, id, api.DeviceWipe{}); err != nil {
		t.Fatalf("asking to wipe it: %v", err)
	}
	for _, tt := range []struct {
		name string
		in   api.DeviceWipe
		want string
	}{
		{"the PIV applet only", api.DeviceWipe{PIV: true}, "FIDO2 application was reset"},
		{"the FIDO2 application only", api.DeviceWipe{FIDO2: api.FIDO2Reset}, "PIV applet was reset"},
		{"no FIDO2 application on a key that carried a FIDO2 factor", api.DeviceWipe{PIV: true, FIDO2: api.FIDO2Absent}, "carried FIDO2 factor"},
		{"a FIDO2 outcome keyfleetd does not know", api.DeviceWipe{PIV: true, FIDO2: "skipped"}, "FIDO2 application was reset"},
	} {
		if _, err := e.svc.ReportDeviceWipe(ctx, desk, id, tt.in); !errors.Is(err, core.ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
			t.Fatalf("a report of %s: %v; want a refusal saying %q", tt.name, err, tt.want)
		}
	}
	if d := e.device(id); d.State != api.DeviceReturned || e.auditHead() != head {
		t.Fatalf("refused reports changed the key: %+v", d)
	}
	d, err := e.svc.ReportDeviceWipe(ctx, desk, id, bothReset("back from carol"))
	if err != nil || d.State != api.DeviceInStock || d.FIDO2Wipe != api.FIDO2Reset || d.API(nil).FIDO2Wipe != api.FIDO2Reset {
		t.Fatalf("a report of both resets: %+v %v", d, err)
	}
	if after := lastAuditAfter(t, e, id); after["fido2"] != api.FIDO2Reset || after["piv"] != "reset" || after["state"] != api.DeviceInStock {
		t.Fatalf("the wipe's audit record says %v", after)
	}
}

// TestAPIVOnlyKeyIsWipedWithoutAFIDO2Reset: a key that never carried a
// FIDO2 factor may be reported without a FIDO2 application.
func TestAPIVOnlyKeyIsWipedWithoutAFIDO2Reset(t *testing.T) {
	e := newWipeEnv(t)
	desk := e.principal(e.admin, "desk-it", api.RoleEnroller)
	e.principal(e.admin, "hal")
	id := e.returnedKey(desk, "hal", "K-601", false)
	d, err := e.svc.ReportDeviceWipe(context.Background(), desk, id, api.DeviceWipe{PIV: true, FIDO2: api.FIDO2Absent})
	if err != nil || d.State != api.DeviceInStock || d.FIDO2Wipe != api.FIDO2Absent {
		t.Fatalf("a PIV-only key: %+v %v", d, err)
	}
}

// TestAKeyWipedPIVOnlyBeforeIsWipedAgainBeforeItIsReassigned: a key an
// older agent put in stock after resetting its PIV applet only may carry
// its previous holder's FIDO2 credentials: it is neither assigned nor
// enrolled on until it is wiped again, which keyfleetd then allows.
func TestAKeyWipedPIVOnlyBeforeIsWipedAgainBeforeItIsReassigned(t *testing.T) {
	e := newWipeEnv(t)
	ctx := context.Background()
	desk := e.principal(e.admin, "desk-it", api.RoleEnroller)
	e.principal(e.admin, "ida")
	e.principal(e.admin, "jon")
	id := e.returnedKey(desk, "ida", "K-602", true)
	if _, err := e.svc.ReportDeviceWipe(ctx, desk, id, bothReset("")); err != nil {
		t.Fatal(err)
	}
	err := e.st.Update(ctx, func(tx core.Tx) error { // as an older agent left it
		d, err := tx.Device(id)
		d.FIDO2Wipe = ""
		return errors.Join(err, tx.PutDevice(d))
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.AssignDevice(ctx, desk, id, api.AssignDevice{User: "jon"}); !errors.Is(err, core.ErrIllegalTransition) || !strings.Contains(err.Error(), "wipe it again") {
		t.Fatalf("assigning a key wiped PIV-only: %v", err)
	}
	if _, err := e.enrolFor(desk, "jon", "K-602"); !errors.Is(err, core.ErrInvalid) || !strings.Contains(err.Error(), "FIDO2 credentials may still be on it") {
		t.Fatalf("enrolling on a key wiped PIV-only: %v", err)
	}
	if d, err := e.svc.ReportDeviceWipe(ctx, desk, id, bothReset("wiped again")); err != nil || d.FIDO2Wipe != api.FIDO2Reset {
		t.Fatalf("wiping it again: %+v %v", d, err)
	}
	if d, err := e.svc.AssignDevice(ctx, desk, id, api.AssignDevice{User: "jon"}); err != nil || d.State != api.DeviceAssigned {
		t.Fatalf("assigning it then: %+v %v", d, err)
	}
	if _, err := e.svc.ReportDeviceWipe(ctx, desk, id, bothReset("")); !errors.Is(err, core.ErrIllegalTransition) {
		t.Fatalf("wiping an assigned key: %v", err)
	}
}

// lastAuditAfter is the "after" summary of the last event about target.
func lastAuditAfter(t *testing.T, e *env, target string) map[string]any {
	t.Helper()
	evs, err := e.svc.ListAudit(context.Background(), e.admin, core.AuditFilter{TargetID: target}, 100)
	if err != nil || len(evs) == 0 {
		t.Fatalf("audit of %s: %v", target, err)
	}
	var body struct{ After map[string]any }
	json.Unmarshal(evs[len(evs)-1].Body, &body)
	return body.After
}
