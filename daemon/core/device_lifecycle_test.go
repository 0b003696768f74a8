package core_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/core"
	"github.com/keyfleet/keyfleet/daemon/core/coretest"
)

// enrolFor enrols a factor for user with principal by on the test device
// serial ("" for none).
func (e *env) enrolFor(by core.Principal, user, serial string) (core.Factor, error) {
	e.t.Helper()
	ctx := context.Background()
	en, _, err := e.svc.CreateEnrolment(ctx, by, api.CreateEnrolment{User: user, Kind: "test"})
	if err != nil {
		e.t.Fatal(err)
	}
	return e.svc.CompleteEnrolment(ctx, by, en.ID, api.CompleteEnrolment{Payload: coretest.EnrolPayload(en.Challenge, "S-"+user, serial)})
}

func (e *env) device(id string) core.Device {
	e.t.Helper()
	d, _, err := e.svc.GetDevice(context.Background(), e.admin, id)
	if err != nil {
		e.t.Fatal(err)
	}
	return d
}

// TestAKeyGoesFromCarolToDaveThroughReturnWipeAndReassign walks the
// lifecycle the IT desk uses: carol's key comes back while she keeps
// another factor (so its factor is revoked at once), an agent reports it
// wiped, it shows in the stock inventory, and it is assigned to dave, who
// enrols on it. Every step is audited.
func TestAKeyGoesFromCarolToDaveThroughReturnWipeAndReassign(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	desk := e.principal(e.admin, "desk-it", api.RoleEnroller)
	e.principal(e.admin, "carol")
	e.principal(e.admin, "dave")
	onKey, _ := e.enrolFor(desk, "carol", "K-100")
	e.enrol("carol", "")
	if _, err := e.enrolFor(desk, "dave", "K-100"); !errors.Is(err, core.ErrInvalid) || !strings.Contains(err.Error(), "belongs to another user") {
		t.Fatalf("enrolling carol's key for dave: %v", err)
	}
	ret, err := e.svc.ReturnDevice(ctx, desk, onKey.DeviceID, api.ReturnDevice{Reason: "carol leaves the team"})
	if err != nil || ret.Device.State != api.DeviceReturned || !slices.Equal(ret.Revoked, []string{onKey.ID}) || len(ret.Approvals) != 0 {
		t.Fatalf("return: %+v %v", ret, err)
	}
	if d := e.device(onKey.DeviceID); d.LastUserID == "" || d.UserID != "" {
		t.Fatalf("a returned device %+v", d)
	}
	if _, err := e.svc.AssignDevice(ctx, desk, onKey.DeviceID, api.AssignDevice{User: "dave"}); !errors.Is(err, core.ErrIllegalTransition) ||
		!strings.Contains(err.Error(), "not wiped") {
		t.Fatalf("assigning a key not wiped: %v", err)
	}
	if _, err := e.svc.ReportDeviceWipe(ctx, desk, onKey.DeviceID, bothReset("wiped at the desk")); err != nil {
		t.Fatal(err)
	}
	inv, err := e.svc.DeviceInventory(ctx, desk, api.DeviceInStock)
	if err != nil || len(inv) != 1 || inv[0] != (api.InventoryRow{Vendor: "Test", Model: "T1", Firmware: "1.0.0", State: api.DeviceInStock, Count: 1}) {
		t.Fatalf("stock inventory %+v %v", inv, err)
	}
	if d, err := e.svc.AssignDevice(ctx, desk, onKey.DeviceID, api.AssignDevice{User: "dave", Reason: "new starter"}); err != nil || d.State != api.DeviceAssigned {
		t.Fatalf("assign: %+v %v", d, err)
	}
	f, err := e.enrolFor(desk, "dave", "K-100")
	if err != nil || f.DeviceID != onKey.DeviceID || e.device(f.DeviceID).State != api.DeviceActive {
		t.Fatalf("dave's enrolment on the reassigned key: %+v %v", f, err)
	}
	trail := auditActions(t, e, onKey.DeviceID)
	for _, want := range []string{"device.return", "device.wipe", "device.assign"} {
		if !slices.Contains(trail, want) {
			t.Fatalf("audit trail of the key %v lacks %s", trail, want)
		}
	}
}

// bothReset is an agent's report that it reset both applets of a key.
func bothReset(reason string) api.DeviceWipe {
	return api.DeviceWipe{Reason: reason, PIV: true, FIDO2: api.FIDO2Reset}
}

// auditActions lists the actions audited about a target.
func auditActions(t *testing.T, e *env, target string) []string {
	t.Helper()
	evs, err := e.svc.ListAudit(context.Background(), e.admin, core.AuditFilter{TargetID: target}, 100)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, ev := range evs {
		var body struct{ Action string }
		json.Unmarshal(ev.Body, &body)
		out = append(out, body.Action)
	}
	return out
}

// TestReturningSomeonesOnlyHardwareKeyWaitsForASecondPerson: an enroller
// alone cannot strip a user of the factor the policy needs by "returning"
// the key: the revocation becomes a request, the enroller cannot approve
// it, and until someone else does the key can be neither wiped nor given
// to anyone.
func TestReturningSomeonesOnlyHardwareKeyWaitsForASecondPerson(t *testing.T) {
	e := newPolicyEnv(t)
	ctx := context.Background()
	desk := e.principal(e.admin, "desk-it", api.RoleEnroller, api.RoleSecurityOfficer)
	e.person("erin")
	e.applyPolicy(e.admin, "version: 1\nrules:\n- name: all\n  match: {everyone: true}\n  require: {min_factors: 1}\n")
	onKey, _ := e.enrolFor(desk, "erin", "K-200")
	if _, err := e.svc.ReturnDevice(ctx, desk, onKey.DeviceID, api.ReturnDevice{}); !errors.Is(err, core.ErrPolicyViolation) {
		t.Fatalf("returning the key with erin's only factor: %v", err)
	}
	e.enrol("erin", "") // a second factor, but the policy (with min_factors 2 below) still needs the key
	e.applyPolicy(e.admin, "version: 1\nrules:\n- name: all\n  match: {everyone: true}\n  require: {min_factors: 2}\n")
	ret, err := e.svc.ReturnDevice(ctx, desk, onKey.DeviceID, api.ReturnDevice{Reason: "swap"})
	if err != nil || len(ret.Revoked) != 0 || len(ret.Approvals) != 1 || ret.Device.State != api.DeviceReturned {
		t.Fatalf("return: %+v %v", ret, err)
	}
	if _, err := e.svc.Approve(ctx, desk, ret.Approvals[0].ID, "me"); !errors.Is(err, core.ErrSelfApproval) {
		t.Fatalf("the returner approving their own request: %v", err)
	}
	for name, try := range map[string]func() error{
		"wipe": func() error { _, err := e.svc.ReportDeviceWipe(ctx, desk, onKey.DeviceID, bothReset("")); return err },
		"assign": func() error {
			_, err := e.svc.AssignDevice(ctx, desk, onKey.DeviceID, api.AssignDevice{User: "root"})
			return err
		},
		"retire": func() error { _, err := e.svc.RetireDevice(ctx, desk, onKey.DeviceID, api.RetireDevice{}); return err },
	} {
		if err := try(); !errors.Is(err, core.ErrIllegalTransition) {
			t.Fatalf("%s while the revocation waits: %v", name, err)
		}
	}
	if _, err := e.approve(e.admin2, ret.Approvals[0].ID); err != nil {
		t.Fatal(err)
	}
	if d, err := e.svc.ReportDeviceWipe(ctx, desk, onKey.DeviceID, bothReset("")); err != nil || d.State != api.DeviceInStock {
		t.Fatalf("wipe after approval: %+v %v", d, err)
	}
}

// TestWhoMayMoveADevice: a user may return only their own key, a helpdesk
// may return but not wipe or assign, and only a key nobody uses retires.
func TestWhoMayMoveADevice(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	fay := e.principal(e.admin, "fay", api.RoleUser)
	gus := e.principal(e.admin, "gus", api.RoleUser)
	fk, _ := e.enrolFor(e.admin, "fay", "K-300")
	e.enrol("fay", "")
	if _, err := e.svc.ReturnDevice(ctx, gus, fk.DeviceID, api.ReturnDevice{}); !errors.Is(err, core.ErrForbidden) {
		t.Fatalf("gus returning fay's key: %v", err)
	}
	if _, err := e.svc.RetireDevice(ctx, e.admin, fk.DeviceID, api.RetireDevice{Destroyed: true}); !errors.Is(err, core.ErrIllegalTransition) {
		t.Fatalf("destroying a key in use: %v", err)
	}
	if _, err := e.svc.ReturnDevice(ctx, fay, fk.DeviceID, api.ReturnDevice{Reason: "new phone, old key back"}); err != nil {
		t.Fatalf("fay returning her own key: %v", err)
	}
	if _, err := e.svc.ReportDeviceWipe(ctx, e.help, fk.DeviceID, bothReset("")); !errors.Is(err, core.ErrForbidden) {
		t.Fatalf("a helpdesk reporting a wipe: %v", err)
	}
	if d, err := e.svc.RetireDevice(ctx, e.admin, fk.DeviceID, api.RetireDevice{Destroyed: true, Reason: "shredded"}); err != nil || d.State != api.DeviceDestroyed {
		t.Fatalf("destroying a returned key: %+v %v", d, err)
	}
	if _, err := e.enrolFor(e.admin, "gus", "K-300"); !errors.Is(err, core.ErrInvalid) {
		t.Fatalf("enrolling on a destroyed key: %v", err)
	}
	if _, err := e.svc.DeviceInventory(ctx, fay, ""); !errors.Is(err, core.ErrForbidden) {
		t.Fatalf("a user reading the inventory: %v", err)
	}
}

// TestThePreflightRefusesWhatCompletionWould: before an agent touches a
// key, the daemon says the enrolment is open and the key may carry a
// factor for the user, or why not; it changes nothing.
func TestThePreflightRefusesWhatCompletionWould(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.principal(e.admin, "hal")
	e.principal(e.admin, "ida")
	hk, _ := e.enrolFor(e.admin, "hal", "K-400")
	en, _, err := e.svc.CreateEnrolment(ctx, e.admin, api.CreateEnrolment{User: "ida", Kind: "test"})
	if err != nil {
		t.Fatal(err)
	}
	head := e.auditHead()
	if _, err := e.svc.PreflightEnrolment(ctx, e.admin, en.ID, api.Preflight{Vendor: "Test", Serial: "K-400"}); !errors.Is(err, core.ErrInvalid) ||
		!strings.Contains(err.Error(), "belongs to another user") {
		t.Fatalf("hal's key for ida: %v", err)
	}
	pf, err := e.svc.PreflightEnrolment(ctx, e.admin, en.ID, api.Preflight{Vendor: "Test", Serial: "K-999"})
	if err != nil || pf.Device != nil || len(pf.Checks) != 2 {
		t.Fatalf("a new key: %+v %v", pf, err)
	}
	if e.auditHead() != head || e.device(hk.DeviceID).State != api.DeviceActive {
		t.Fatal("the pre-flight changed something")
	}
	e.clock.Add(2 * time.Hour)
	if _, err := e.svc.PreflightEnrolment(ctx, e.admin, en.ID, api.Preflight{Vendor: "Test", Serial: "K-999"}); !errors.Is(err, core.ErrEnrolmentClosed) {
		t.Fatalf("an expired enrolment: %v", err)
	}
}
