package core

import (
	"context"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/plugins/sdk"
)

// GetDevice returns a device and the ids of the factors on it.
func (s *Service) GetDevice(ctx context.Context, p Principal, id string) (Device, []string, error) {
	var d Device
	var ids []string
	err := s.store.View(ctx, func(tx ReadTx) error {
		var err error
		if d, err = tx.Device(id); err != nil {
			return err
		}
		if err := p.authorize(ReadDevices, d.UserID); err != nil {
			return err
		}
		ids, err = factorIDs(tx, d.ID)
		return err
	})
	return d, ids, err
}

func factorIDs(tx ReadTx, deviceID string) ([]string, error) {
	var ids []string
	err := forEach(tx.Factors, FactorFilter{DeviceID: deviceID}, func(f Factor) error {
		ids = append(ids, f.ID)
		return nil
	})
	return ids, err
}

// ListDevices lists devices with the ids of the factors on each.
func (s *Service) ListDevices(ctx context.Context, p Principal, f DeviceFilter, pg PageReq) ([]Device, map[string][]string, string, error) {
	own, err := p.ownFilter(ReadDevices)
	if err != nil {
		return nil, nil, "", err
	}
	var out []Device
	ids := map[string][]string{}
	var next string
	err = s.store.View(ctx, func(tx ReadTx) error {
		if f.UserID != "" {
			u, err := lookupFor(tx, p, ReadDevices, f.UserID)
			if err != nil {
				return err
			}
			f.UserID = u.ID
		}
		if own != "" {
			f.UserID = own
		}
		if out, next, err = tx.Devices(f, pg.Clamp()); err != nil {
			return err
		}
		for _, d := range out {
			if ids[d.ID], err = factorIDs(tx, d.ID); err != nil {
				return err
			}
		}
		return nil
	})
	return out, ids, next, err
}

// MarkDeviceLost marks a key lost and revokes every factor on it in the
// same transaction. It acts at once, without a second approver: a lost key
// may be in an attacker's hands, and revocation only removes access.
func (s *Service) MarkDeviceLost(ctx context.Context, p Principal, id, reason string) (Device, []string, error) {
	if err := validText("reason", reason, 500); err != nil {
		return Device{}, nil, err
	}
	var d Device
	var ids []string
	err := s.store.Update(ctx, func(tx Tx) error {
		var err error
		d, ids, err = s.markLost(ctx, tx, p, id, reason)
		return err
	})
	return d, ids, err
}

// markLost marks a device lost and revokes every factor on it, inside the
// caller's transaction (a recovery case opens in the same one).
func (s *Service) markLost(ctx context.Context, tx Tx, p Principal, id, reason string) (Device, []string, error) {
	d, err := tx.Device(id)
	if err != nil {
		return Device{}, nil, err
	}
	if err := p.authorize(ReportLost, d.UserID); err != nil {
		return Device{}, nil, err
	}
	if d.State == api.DeviceLost || d.State == api.DeviceRetired || d.State == api.DeviceDestroyed {
		return Device{}, nil, &TransitionError{Kind: "device", ID: d.ID, From: d.State, Action: "mark lost", Hint: "its factors are already revoked"}
	}
	ev := s.eventCtx(ctx, p, reason)
	ev.extra = map[string]string{"device_id": d.ID}
	before := d.State
	d.State, d.UpdatedAt = api.DeviceLost, s.now()
	if err := tx.PutDevice(d); err != nil {
		return Device{}, nil, err
	}
	if err := ev.audit(tx, "device.lost", targetRef{"device", d.ID, d.Vendor + " " + d.Serial},
		map[string]any{"state": before}, map[string]any{"state": d.State}); err != nil {
		return Device{}, nil, err
	}
	var ids []string
	err = forEach(tx.Factors, FactorFilter{DeviceID: d.ID}, func(f Factor) error {
		ids = append(ids, f.ID)
		if f.State == api.FactorRevoked {
			return nil
		}
		return s.revokeFactor(tx, ev, f, "device reported lost")
	})
	return d, ids, err
}

// attachDevice finds or registers the physical key a new factor lives on.
func (s *Service) attachDevice(tx Tx, ev *eventCtx, info sdk.Device, userID string) (Device, error) {
	d, err := tx.DeviceBySerial(info.Vendor, info.Serial)
	switch {
	case err == nil:
		if err := attachable(d, userID); err != nil {
			return Device{}, err
		}
	case isNotFound(err):
		now := s.now()
		d = Device{ID: newID(prefixDevice, now, s.cfg.Rand), Vendor: info.Vendor, Serial: info.Serial, CreatedAt: now}
		if err := tx.InsertDevice(d); err != nil {
			return Device{}, err
		}
	default:
		return Device{}, err
	}
	before := d.State
	// A key seen before keeps the model it was first reported as (the PIV
	// applet names the product line; a FIDO2 AAGUID label is vaguer); a
	// firmware reading replaces the old one only when there is one.
	if d.Model == "" {
		d.Model = info.Model
	}
	if info.Firmware != "" {
		d.Firmware = info.Firmware
	}
	d.UserID, d.State, d.UpdatedAt = userID, api.DeviceActive, s.now()
	if err := tx.PutDevice(d); err != nil {
		return Device{}, err
	}
	return d, ev.audit(tx, "device.assign", targetRef{"device", d.ID, d.Vendor + " " + d.Serial},
		map[string]any{"state": before}, map[string]any{"state": d.State, "user_id": userID, "firmware": d.Firmware})
}
