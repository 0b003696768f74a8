package core

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/policy"
)

// Device lifecycle permissions. They join the one grant table of
// authz.go in init below.
const (
	// ReturnDevices: a key comes back to IT (its owner may return their own).
	ReturnDevices Action = "devices.return"
	// WipeDevices: an agent reports a returned key wiped.
	WipeDevices Action = "devices.wipe"
	// AssignDevices: a wiped key in stock goes to a user.
	AssignDevices Action = "devices.assign"
	// RetireDevices: a key leaves the fleet, retired or destroyed.
	RetireDevices Action = "devices.retire"
)

func init() {
	deviceGrants := map[string]map[Action]Scope{
		api.RoleAdmin:           allOf(All, ReturnDevices, WipeDevices, AssignDevices, RetireDevices),
		api.RoleSecurityOfficer: allOf(All, ReturnDevices, RetireDevices),
		api.RoleHelpdesk:        allOf(All, ReturnDevices),
		api.RoleEnroller:        allOf(All, ReturnDevices, WipeDevices, AssignDevices, RetireDevices),
		api.RoleUser:            allOf(Own, ReturnDevices),
	}
	for role, g := range deviceGrants {
		maps.Copy(grants[role], g) // the break-glass role shares the admin's map
	}
}

// deviceHints say what to do with a device in a state that does not allow
// the action tried.
var deviceHints = map[string]string{
	api.DeviceInStock:   "it is in stock: assign it to a user with 'keyfleet devices reassign'",
	api.DeviceReturned:  "it was returned and not wiped since: wipe it with 'keyfleet-agent wipe', then assign it",
	api.DeviceLost:      "it was reported lost and its factors revoked; retire it, or if it turns up, retire it and enrol a new key",
	api.DeviceRetired:   "it is retired for good",
	api.DeviceDestroyed: "it was destroyed",
	api.DeviceAssigned:  "it is assigned to a user: return it first with 'keyfleet devices return'",
	api.DeviceActive:    "it is in use: return it first with 'keyfleet devices return'",
}

// DeviceReturn is what returning a device did: the factors revoked at once
// and the approvals asked for the others.
type DeviceReturn struct {
	Device    Device
	Revoked   []string
	Approvals []Approval
}

// ReturnDevice records a key coming back (a leaver's, a replaced one).
// Every live factor on it goes through the rules of any removal: revoked
// at once while the owner still meets the policy without them (or cannot
// sign in: disabled), otherwise one revoke request per factor for a
// second person to approve; a key holding every active factor of its
// owner needs in.ReplacementPlanned. The device is "returned" either way
// and cannot be wiped or assigned until its factors are revoked. Errors:
// ErrNotFound, *ForbiddenError, *TransitionError, ErrPolicyViolation.
func (s *Service) ReturnDevice(ctx context.Context, p Principal, id string, in api.ReturnDevice) (DeviceReturn, error) {
	reason := in.Reason
	if reason == "" {
		reason = "key returned"
	}
	if err := validText("reason", reason, 500); err != nil {
		return DeviceReturn{}, err
	}
	var out DeviceReturn
	err := s.store.Update(ctx, func(tx Tx) error {
		d, err := tx.Device(id)
		if err != nil {
			return err
		}
		if err := p.authorize(ReturnDevices, d.UserID); err != nil {
			return err
		}
		if d.State != api.DeviceActive && d.State != api.DeviceAssigned {
			return &TransitionError{Kind: "device", ID: d.ID, From: d.State, Action: "return", Hint: deviceHints[d.State]}
		}
		if out, err = s.releaseFactors(ctx, tx, p, d, reason, in.ReplacementPlanned); err != nil {
			return err
		}
		out.Device, err = s.moveDevice(ctx, tx, p, d, "device.return", reason, func(d *Device) {
			now := s.now()
			d.LastUserID, d.UserID, d.State, d.ReturnedAt = d.UserID, "", api.DeviceReturned, &now
		})
		return err
	})
	return out, err
}

// releaseFactors revokes a returned device's live factors at once, or asks
// for their revocation (see ReturnDevice).
func (s *Service) releaseFactors(ctx context.Context, tx Tx, p Principal, d Device, reason string, planned bool) (DeviceReturn, error) {
	var out DeviceReturn
	live, err := liveFactors(tx, d.ID)
	if err != nil || len(live) == 0 {
		return out, err
	}
	atOnce, err := s.mayRevokeAtOnce(tx, d, live, planned)
	if err != nil {
		return out, err
	}
	for _, f := range live {
		if atOnce {
			ev := s.eventCtx(ctx, p, reason)
			ev.extra = map[string]string{"device_id": d.ID}
			if err := s.revokeFactor(tx, ev, f, "device returned: "+reason); err != nil {
				return out, err
			}
			out.Revoked = append(out.Revoked, f.ID)
			continue
		}
		a, err := s.revokeRequest(ctx, tx, p, f, reason, planned)
		if err != nil {
			return out, err
		}
		out.Approvals = append(out.Approvals, a)
	}
	return out, nil
}

// mayRevokeAtOnce reports whether a returned device's factors may go at
// once: their owner is not active, or still meets the policy without all
// of them. Taking every active factor of an active owner needs a planned
// replacement (ErrPolicyViolation), as removing the last factor does.
func (s *Service) mayRevokeAtOnce(tx ReadTx, d Device, live []Factor, planned bool) (bool, error) {
	owner, err := tx.User(d.UserID)
	if isNotFound(err) || (err == nil && owner.Status != api.UserActive) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	ids := make([]string, len(live))
	for i, f := range live {
		ids[i] = f.ID
	}
	others := false
	err = forEach(tx.Factors, FactorFilter{UserID: owner.ID, State: api.FactorActive}, func(f Factor) error {
		others = others || !slices.Contains(ids, f.ID)
		return nil
	})
	if err != nil {
		return false, err
	}
	if !others && owner.Kind != api.KindService && !planned {
		return false, fmt.Errorf("%w: %s key %s holds every active factor of %s; enrol another factor for them first, "+
			"or return it with --replacement-planned (the revocation then waits for a second approver)",
			ErrPolicyViolation, d.Vendor, d.Serial, owner.Username)
	}
	short, err := s.shortWithoutAll(tx, owner.ID, ids)
	return !short && others, err
}

// shortWithoutAll reports whether a user would fall short of the policy
// (grace or non-compliant) without the factors ids.
func (s *Service) shortWithoutAll(tx ReadTx, userID string, ids []string) (bool, error) {
	_, doc, err := s.currentPolicy(tx)
	if err != nil {
		return false, err
	}
	facts, err := tx.UserPolicyFacts(userID)
	if err != nil {
		return false, err
	}
	var fs []policy.Factor
	for _, f := range facts.Factors {
		if !slices.Contains(ids, f.ID) {
			fs = append(fs, s.policyFactorOf(f))
		}
	}
	d := policy.Evaluate(doc, policyUserOf(facts.User), fs, facts.FirstApplied, facts.Exemptions, s.now())
	return d.Status != policy.StatusCompliant, nil
}

// revokeRequest asks for f's revocation for a returned device, or returns
// the revoke request already pending for it.
func (s *Service) revokeRequest(ctx context.Context, tx Tx, p Principal, f Factor, reason string, planned bool) (Approval, error) {
	var found Approval
	now := s.now()
	err := forEach(tx.Approvals, ApprovalFilter{State: api.ApprovalPending}, func(a Approval) error {
		if a.Action == api.ActionFactorRevoke && a.TargetID == f.ID && a.stateAt(now) == api.ApprovalPending {
			found = a
		}
		return nil
	})
	if err != nil || found.ID != "" {
		return found, err
	}
	r := request{action: api.ActionFactorRevoke, perm: ReturnDevices, target: factorTarget(f), owner: f.UserID}
	if planned {
		r.params = map[string]string{paramReplacementPlanned: "true"}
	}
	return s.requestTx(ctx, tx, p, "device returned: "+reason, r)
}

// liveFactors are the factors on a device that are not revoked.
func liveFactors(tx ReadTx, deviceID string) ([]Factor, error) {
	var out []Factor
	err := forEach(tx.Factors, FactorFilter{DeviceID: deviceID}, func(f Factor) error {
		if f.State != api.FactorRevoked {
			out = append(out, f)
		}
		return nil
	})
	return out, err
}

// noLiveFactors refuses an action on a device that still carries a factor
// that is not revoked (a revocation waiting for approval).
func noLiveFactors(tx ReadTx, d Device, action string) error {
	live, err := liveFactors(tx, d.ID)
	if err != nil || len(live) == 0 {
		return err
	}
	ids := make([]string, len(live))
	for i, f := range live {
		ids[i] = f.ID
	}
	return &TransitionError{Kind: "device", ID: d.ID, From: d.State, Action: action,
		Hint: fmt.Sprintf("factor %s on it is still %s: its revocation must be approved first ('keyfleet approvals list')", strings.Join(ids, ", "), live[0].State)}
}

// moveDevice applies change to d, stores it and audits the move (its state
// and owner before and after) as action.
func (s *Service) moveDevice(ctx context.Context, tx Tx, p Principal, d Device, action, reason string, change func(*Device)) (Device, error) {
	return s.moveDeviceNoting(ctx, tx, p, d, action, reason, nil, change)
}

// moveDeviceNoting is moveDevice that records note (what was done to the
// key) with the state after.
func (s *Service) moveDeviceNoting(ctx context.Context, tx Tx, p Principal, d Device, action, reason string, note map[string]any, change func(*Device)) (Device, error) {
	before := map[string]any{"state": d.State, "user_id": d.UserID}
	change(&d)
	d.UpdatedAt = s.now()
	if err := tx.PutDevice(d); err != nil {
		return Device{}, err
	}
	ev := s.eventCtx(ctx, p, reason)
	ev.extra = map[string]string{"device_id": d.ID}
	after := map[string]any{"state": d.State, "user_id": d.UserID}
	for k, v := range note {
		after[k] = v
	}
	return d, ev.audit(tx, action, targetRef{"device", d.ID, d.Vendor + " " + d.Serial}, before, after)
}
