package agent

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/keyfleet/keyfleet/api"
)

// WipeDaemon is what Wipe needs from keyfleetd; *client.Client has it.
type WipeDaemon interface {
	DeviceBySerial(ctx context.Context, vendor, serial string) (api.Device, bool, error)
	CheckDeviceWipe(ctx context.Context, id string, planned api.DeviceWipe) (api.Device, error)
	ReportDeviceWipe(ctx context.Context, id string, in api.DeviceWipe) (api.Device, error)
}

// ErrUnknownDevice: keyfleetd does not know the key, so there is nothing
// to record; Wipe refuses unless asked to wipe such a key anyway.
var ErrUnknownDevice = errors.New("keyfleetd does not know this key: nothing of it to return; pass --unknown to wipe it anyway")

// WipeOptions configure Wipe.
type WipeOptions struct {
	Reason string
	// Unknown wipes a key keyfleetd has never seen (nothing is reported).
	Unknown bool
}

// Wipe wipes a returned key for its next user, after keyfleetd agreed
// (the key is returned and every factor on it revoked): it resets the PIV
// applet, then the FIDO2 application (the previous holder's passkeys for
// every site go with it), which a key takes only just after it is plugged
// in, so the operator is asked to plug it in again (see WipeKeys). Nothing
// on the key changes until keyfleetd agreed and the key's FIDO2
// application was found (or k.NoFIDO2 says it has none). Then the wipe is
// reported, and keyfleetd puts the key back in stock. It returns the
// device as keyfleetd now knows it.
//
// Errors wrap ErrPreflight (with keyfleetd's reason), ErrUnknownDevice,
// ErrNoFIDO2App, ErrResetWindow (the key was plugged in too long before
// the reset reached it), ErrReplugTimeout, ErrOtherKey, or are the
// tokens'. After the PIV reset, an error says the key stays returned and
// the same command finishes the wipe.
func Wipe(ctx context.Context, d WipeDaemon, k WipeKeys, o WipeOptions) (api.Device, DeviceInfo, error) {
	if k.OpenPIV == nil || (!k.NoFIDO2 && (k.FIDO2 == nil || k.Serial == nil)) {
		return api.Device{}, DeviceInfo{}, errors.New("agent: WipeKeys needs OpenPIV, and FIDO2 and Serial unless NoFIDO2")
	}
	info, err := k.readPIV()
	if err != nil {
		return api.Device{}, info, err
	}
	if info.Reader != "" {
		k.Reader = info.Reader
	}
	fido2 := api.FIDO2Reset
	if k.NoFIDO2 {
		fido2 = api.FIDO2Absent
	}
	report := api.DeviceWipe{Reason: o.Reason, PIV: true, FIDO2: fido2}
	dev, known, err := wipeAllowed(ctx, d, info, report, o.Unknown)
	if err != nil {
		return dev, info, err
	}
	path, err := k.findFIDO2(info)
	if err != nil {
		return dev, info, err
	}
	if err := k.resetPIV(info); err != nil {
		return dev, info, err
	}
	if !k.NoFIDO2 {
		if err := k.resetFIDO2(ctx, info, path); err != nil {
			return dev, info, fmt.Errorf("the key's PIV applet was reset, but its FIDO2 application was not: %w; "+
				"keyfleetd keeps the key returned: run the same command again to finish the wipe", err)
		}
	}
	if !known {
		return dev, info, nil
	}
	if dev, err = d.ReportDeviceWipe(ctx, dev.ID, report); err != nil {
		return dev, info, fmt.Errorf("the key was wiped, but keyfleetd did not record it (%w): run the same command again to report it", err)
	}
	return dev, info, nil
}

// wipeAllowed asks keyfleetd whether the key may be wiped and reported
// as planned. known is false for a key keyfleetd has never seen (allowed
// only with unknown).
func wipeAllowed(ctx context.Context, d WipeDaemon, info DeviceInfo, planned api.DeviceWipe, unknown bool) (dev api.Device, known bool, err error) {
	dev, found, err := d.DeviceBySerial(ctx, "Yubico", strconv.FormatUint(uint64(info.Serial), 10))
	switch {
	case err != nil:
		return dev, false, fmt.Errorf("looking the key up in keyfleetd: %w", err)
	case !found && !unknown:
		return dev, false, ErrUnknownDevice
	case !found:
		return dev, false, nil
	}
	if _, err := d.CheckDeviceWipe(ctx, dev.ID, planned); err != nil {
		return dev, true, fmt.Errorf("%w: %w", ErrPreflight, err)
	}
	return dev, true, nil
}

// readPIV reads the key's serial and firmware, and lets it go.
func (k WipeKeys) readPIV() (DeviceInfo, error) {
	tok, err := k.OpenPIV(k.Reader)
	if err != nil {
		return DeviceInfo{}, err
	}
	defer tok.Close()
	return tok.Info()
}

// resetPIV resets the PIV applet of the key read as info, after checking
// it is still that key, and lets the key go (its FIDO2 applet may be
// reached through the same reader, which piv-go holds exclusively).
func (k WipeKeys) resetPIV(info DeviceInfo) error {
	tok, err := k.OpenPIV(k.Reader)
	if err != nil {
		return err
	}
	defer tok.Close()
	if now, err := tok.Info(); err != nil || now.Serial != info.Serial {
		return fmt.Errorf("%w: the key in the reader changed after keyfleetd was asked (now %d, was %d); nothing on it was changed", ErrOtherKey, now.Serial, info.Serial)
	}
	if err := tok.Reset(); err != nil {
		return fmt.Errorf("wiping the key's PIV applet: %w", err)
	}
	return nil
}
