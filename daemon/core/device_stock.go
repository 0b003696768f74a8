package core

import (
	"cmp"
	"context"
	"slices"

	"github.com/keyfleet/keyfleet/api"
)

// ReportDeviceWipe records that an agent wiped a returned key: it goes
// back to stock, ready to be assigned. The report must account for both
// applets: the PIV applet reset, and the FIDO2 application reset (or
// absent, which a key that carried a FIDO2 factor cannot be): otherwise
// the previous holder's credentials could go with the key to its next
// user. A key whose factors are not all revoked yet (a revocation waiting
// for approval) is refused: the agent asks first and does not wipe it. A
// key in stock whose last wipe left its FIDO2 application may be wiped
// again. Errors: ErrNotFound, *ForbiddenError, *TransitionError,
// ErrInvalid (the report does not account for both applets).
func (s *Service) ReportDeviceWipe(ctx context.Context, p Principal, id string, in api.DeviceWipe) (Device, error) {
	if err := validText("reason", in.Reason, 500); err != nil {
		return Device{}, err
	}
	if err := validWipe(in); err != nil {
		return Device{}, err
	}
	var d Device
	err := s.store.Update(ctx, func(tx Tx) error {
		var err error
		if d, err = s.wipeable(tx, p, id); err != nil {
			return err
		}
		if err := fido2Accounted(tx, d, in); err != nil {
			return err
		}
		note := map[string]any{"piv": "reset", "fido2": in.FIDO2}
		d, err = s.moveDeviceNoting(ctx, tx, p, d, "device.wipe", in.Reason, note, func(d *Device) {
			now := s.now()
			d.State, d.WipedAt, d.FIDO2Wipe = api.DeviceInStock, &now, in.FIDO2
		})
		return err
	})
	return d, err
}

// validWipe refuses a wipe report that does not account for both applets.
func validWipe(in api.DeviceWipe) error {
	if !in.PIV {
		return invalid("piv", "the report does not say the key's PIV applet was reset (piv: true): the key stays returned; 'keyfleet-agent wipe' resets it")
	}
	if in.FIDO2 != api.FIDO2Reset && in.FIDO2 != api.FIDO2Absent {
		return invalid("fido2", "the report does not say the key's FIDO2 application was reset (fido2: %q) or that the key has none (%q): "+
			"its previous holder's FIDO2 credentials would go with it to its next user, so it stays returned; 'keyfleet-agent wipe' resets it",
			api.FIDO2Reset, api.FIDO2Absent)
	}
	return nil
}

// fido2Accounted refuses a report that a key has no FIDO2 application
// when a FIDO2 factor was once enrolled on it.
func fido2Accounted(tx ReadTx, d Device, in api.DeviceWipe) error {
	if in.FIDO2 != api.FIDO2Absent {
		return nil
	}
	var onKey string
	err := forEach(tx.Factors, FactorFilter{DeviceID: d.ID, Kind: "fido2"}, func(f Factor) error {
		onKey = f.ID
		return nil
	})
	if err != nil || onKey == "" {
		return err
	}
	return invalid("fido2", "%s key %s carried FIDO2 factor %s, so it has a FIDO2 application: reset it ('keyfleet-agent wipe' without --no-fido2)", d.Vendor, d.Serial, onKey)
}

// wipeable reads a device an agent may wipe now: returned, with every
// factor on it revoked, or in stock after a wipe that left its FIDO2
// application as it was.
func (s *Service) wipeable(tx ReadTx, p Principal, id string) (Device, error) {
	d, err := tx.Device(id)
	if err != nil {
		return Device{}, err
	}
	if err := p.authorize(WipeDevices, ""); err != nil {
		return Device{}, err
	}
	if d.State != api.DeviceReturned && !d.fido2Left() {
		hint := deviceHints[d.State]
		if d.State == api.DeviceInStock {
			hint = "it is already wiped and in stock"
		}
		return Device{}, &TransitionError{Kind: "device", ID: d.ID, From: d.State, Action: "wipe", Hint: hint}
	}
	return d, noLiveFactors(tx, d, "wipe")
}

// CheckDeviceWipe says whether an agent may wipe the device now, without
// changing anything: what ReportDeviceWipe would refuse of the key, it
// refuses. planned is the report the agent means to make (its FIDO2
// outcome: a key that carried a FIDO2 factor cannot be reported without a
// FIDO2 application); its zero value checks the key only.
func (s *Service) CheckDeviceWipe(ctx context.Context, p Principal, id string, planned api.DeviceWipe) (Device, error) {
	var d Device
	err := s.store.View(ctx, func(tx ReadTx) error {
		var err error
		if d, err = s.wipeable(tx, p, id); err != nil {
			return err
		}
		return fido2Accounted(tx, d, planned)
	})
	return d, err
}

// AssignDevice gives a wiped key in stock to a user, who may then enrol
// factors on it. Errors: ErrNotFound, *ForbiddenError, *TransitionError
// (not in stock: returned and not wiped, in use, lost, retired).
func (s *Service) AssignDevice(ctx context.Context, p Principal, id string, in api.AssignDevice) (Device, error) {
	if err := validText("reason", in.Reason, 500); err != nil {
		return Device{}, err
	}
	var d Device
	err := s.store.Update(ctx, func(tx Tx) error {
		var err error
		if d, err = tx.Device(id); err != nil {
			return err
		}
		u, err := lookupUser(tx, in.User)
		if err != nil {
			return err
		}
		if err := p.authorize(AssignDevices, u.ID); err != nil {
			return err
		}
		if d.State != api.DeviceInStock {
			return &TransitionError{Kind: "device", ID: d.ID, From: d.State, Action: "assign", Hint: deviceHints[d.State]}
		}
		if d.fido2Left() {
			return &TransitionError{Kind: "device", ID: d.ID, From: d.State, Action: "assign", Hint: fido2LeftHint}
		}
		if err := noLiveFactors(tx, d, "assign"); err != nil {
			return err
		}
		if _, err := s.activeUser(tx, u.ID); err != nil {
			return err
		}
		d, err = s.moveDevice(ctx, tx, p, d, "device.assign", in.Reason, func(d *Device) {
			d.State, d.UserID = api.DeviceAssigned, u.ID
		})
		return err
	})
	return d, err
}

// RetireDevice takes a key out of the fleet for good: retired, or
// destroyed. Only a key nobody uses may go (in stock, returned with its
// factors revoked, or lost). Errors: ErrNotFound, *ForbiddenError,
// *TransitionError.
func (s *Service) RetireDevice(ctx context.Context, p Principal, id string, in api.RetireDevice) (Device, error) {
	if err := validText("reason", in.Reason, 500); err != nil {
		return Device{}, err
	}
	to, action := api.DeviceRetired, "device.retire"
	if in.Destroyed {
		to, action = api.DeviceDestroyed, "device.destroy"
	}
	var d Device
	err := s.store.Update(ctx, func(tx Tx) error {
		var err error
		if d, err = tx.Device(id); err != nil {
			return err
		}
		if err := p.authorize(RetireDevices, ""); err != nil {
			return err
		}
		if !slices.Contains([]string{api.DeviceInStock, api.DeviceReturned, api.DeviceLost}, d.State) {
			return &TransitionError{Kind: "device", ID: d.ID, From: d.State, Action: "retire", Hint: deviceHints[d.State]}
		}
		if err := noLiveFactors(tx, d, "retire"); err != nil {
			return err
		}
		d, err = s.moveDevice(ctx, tx, p, d, action, in.Reason, func(d *Device) { d.State, d.UserID = to, "" })
		return err
	})
	return d, err
}

// DeviceInventory counts devices by vendor, model, firmware and state;
// state "" counts every state. Only a principal who may read every
// device sees it. Rows are sorted by state, vendor, model, firmware.
func (s *Service) DeviceInventory(ctx context.Context, p Principal, state string) ([]api.InventoryRow, error) {
	if p.Scope(ReadDevices) != All {
		return nil, &ForbiddenError{Principal: p.Username, Action: ReadDevices, Reason: "the inventory counts every user's keys"}
	}
	counts := map[api.InventoryRow]int{}
	err := s.store.View(ctx, func(tx ReadTx) error {
		return forEach(tx.Devices, DeviceFilter{State: state}, func(d Device) error {
			counts[api.InventoryRow{Vendor: d.Vendor, Model: d.Model, Firmware: d.Firmware, State: d.State}]++
			return nil
		})
	})
	rows := make([]api.InventoryRow, 0, len(counts))
	for r, n := range counts {
		r.Count = n
		rows = append(rows, r)
	}
	slices.SortFunc(rows, func(a, b api.InventoryRow) int {
		return cmp.Or(cmp.Compare(a.State, b.State), cmp.Compare(a.Vendor, b.Vendor),
			cmp.Compare(a.Model, b.Model), cmp.Compare(a.Firmware, b.Firmware))
	})
	return rows, err
}

// fido2LeftHint says what to do with a key in stock whose last wipe left
// its FIDO2 application as it was.
const fido2LeftHint = "its last wipe reset the PIV applet only, so its previous holder's FIDO2 credentials may still be on it: wipe it again with 'keyfleet-agent wipe', which resets both"

// attachable refuses a known device that cannot carry a new factor for
// userID: lost, retired or destroyed; returned and not wiped since (or
// wiped without its FIDO2 application); or another user's. A wiped key in
// stock, or one assigned to userID, is fine. Errors wrap ErrInvalid.
func attachable(d Device, userID string) error {
	switch {
	case d.State == api.DeviceLost || d.State == api.DeviceRetired || d.State == api.DeviceDestroyed:
		return invalid("device", "%s key %s is marked %s; a lost or retired key cannot carry new factors", d.Vendor, d.Serial, d.State)
	case d.State == api.DeviceReturned:
		return invalid("device", "%s key %s was returned and not wiped since: wipe it with 'keyfleet-agent wipe' (and assign it with 'keyfleet devices reassign') first", d.Vendor, d.Serial)
	case d.fido2Left():
		return invalid("device", "%s key %s: %s", d.Vendor, d.Serial, fido2LeftHint)
	case d.UserID != "" && d.UserID != userID:
		return invalid("device", "%s key %s belongs to another user: return it ('keyfleet devices return'), wipe it ('keyfleet-agent wipe') and assign it ('keyfleet devices reassign') first", d.Vendor, d.Serial)
	}
	return nil
}
