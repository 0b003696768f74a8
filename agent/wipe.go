package agent

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/keyfleet/keyfleet/api"
)

// WipeDaemon is what WipePIV needs from keyfleetd; *client.Client has it.
type WipeDaemon interface {
	DeviceBySerial(ctx context.Context, vendor, serial string) (api.Device, bool, error)
	CheckDeviceWipe(ctx context.Context, id string) (api.Device, error)
	ReportDeviceWipe(ctx context.Context, id, reason string) (api.Device, error)
}

// ErrUnknownDevice: keyfleetd does not know the key, so there is nothing
// to record; WipePIV refuses unless asked to wipe such a key anyway.
var ErrUnknownDevice = errors.New("keyfleetd does not know this key: nothing of it to return; pass --unknown to wipe it anyway")

// WipeOptions configure WipePIV.
type WipeOptions struct {
	Reason string
	// Unknown wipes a key keyfleetd has never seen (nothing is reported).
	Unknown bool
}

// WipePIV wipes a returned key's PIV applet for its next user, after
// keyfleetd agreed: the key is returned and every factor on it revoked.
// When keyfleetd refuses, the key is not touched. After the wipe the key is
// reported, and keyfleetd puts it back in stock. It returns the device as
// keyfleetd now knows it. Errors wrap ErrPreflight (with keyfleetd's
// reason), ErrUnknownDevice, or are the token's.
func WipePIV(ctx context.Context, d WipeDaemon, tok PIVToken, o WipeOptions) (api.Device, DeviceInfo, error) {
	info, err := tok.Info()
	if err != nil {
		return api.Device{}, info, err
	}
	dev, found, err := d.DeviceBySerial(ctx, "Yubico", strconv.FormatUint(uint64(info.Serial), 10))
	switch {
	case err != nil:
		return api.Device{}, info, fmt.Errorf("looking the key up in keyfleetd: %w", err)
	case !found && !o.Unknown:
		return api.Device{}, info, ErrUnknownDevice
	case !found:
		return api.Device{}, info, wipe(tok)
	}
	if _, err := d.CheckDeviceWipe(ctx, dev.ID); err != nil {
		return dev, info, fmt.Errorf("%w: %w", ErrPreflight, err)
	}
	if err := wipe(tok); err != nil {
		return dev, info, err
	}
	if dev, err = d.ReportDeviceWipe(ctx, dev.ID, o.Reason); err != nil {
		return dev, info, fmt.Errorf("the key was wiped, but keyfleetd did not record it (%w): run the same command again to report it", err)
	}
	return dev, info, nil
}

func wipe(tok PIVToken) error {
	if err := tok.Reset(); err != nil {
		return fmt.Errorf("wiping the key's PIV applet: %w", err)
	}
	return nil
}
