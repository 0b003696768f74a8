package agent

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Errors of a FIDO2 reset during Wipe, besides ErrResetWindow.
var (
	// ErrNoFIDO2App: no FIDO2 application was found for the key being
	// wiped; nothing on it was changed.
	ErrNoFIDO2App = errors.New("no FIDO2 application was found on the key, so nothing on it was changed: " +
		"if it has none (a PIV-only card, or FIDO2 turned off), run the command again with --no-fido2; " +
		"otherwise plug it in over USB, check this agent was built with libfido2, and run it again")
	// ErrReplugTimeout: the key was not plugged in again in time.
	ErrReplugTimeout = errors.New("the key was not unplugged and plugged back in in time")
	// ErrOtherKey: the key plugged back in is not the one being wiped.
	ErrOtherKey = errors.New("the key plugged back in is not the one being wiped, so its FIDO2 application was not reset")
)

// pcscPrefix starts the path of a FIDO2 key reached through PC/SC (as
// agent/fido2 names them): its reader follows.
const pcscPrefix = "pcsc:"

// WipeKeys reaches the applets of the key Wipe wipes. The zero durations
// default to 2 min (ReplugWait) and 100 ms (Poll).
type WipeKeys struct {
	// OpenPIV opens the PIV applet of the key in reader ("": the only
	// YubiKey connected). Wipe closes every token it opens.
	OpenPIV func(reader string) (PIVToken, error)
	// Reader is the key's PC/SC reader ("": the only YubiKey); once the key
	// is read, Wipe keeps to its reader.
	Reader string
	// Serial reads the serial of the key in a reader without holding it
	// (agent/fido2's CardSerial): the agent polls it while the key is
	// unplugged and plugged back in, when an exclusive open could be left
	// holding a card that went away.
	Serial func(reader string) (uint32, error)
	// FIDO2 finds FIDO2 keys; FIDO2Path picks one ("": the one in the PIV
	// key's reader, else the only one connected).
	FIDO2     FIDO2Opener
	FIDO2Path string
	// NoFIDO2 says the key has no FIDO2 application (reported as absent;
	// keyfleetd refuses that for a key that carried a FIDO2 factor).
	NoFIDO2 bool
	// Prompt tells the operator what to do now.
	Prompt func(msg string)
	// ReplugWait bounds the wait for the key to be plugged back in; Poll
	// is how often the agent looks.
	ReplugWait, Poll time.Duration
}

// findFIDO2 finds the FIDO2 application of the key whose PIV applet is
// info ("" when k.NoFIDO2): k.FIDO2Path, the key in the same PC/SC reader,
// or the only FIDO2 key connected (USB HID cannot tell which YubiKey it
// is; the re-plug does). Errors wrap ErrNoFIDO2App or ErrOtherKey.
func (k WipeKeys) findFIDO2(info DeviceInfo) (string, error) {
	if k.NoFIDO2 {
		return "", nil
	}
	if k.FIDO2Path != "" {
		return k.FIDO2Path, nil
	}
	paths, err := k.FIDO2.Devices()
	if err != nil {
		return "", fmt.Errorf("%w (%v)", ErrNoFIDO2App, err)
	}
	if info.Reader != "" && slices.Contains(paths, pcscPrefix+info.Reader) {
		return pcscPrefix + info.Reader, nil
	}
	switch {
	case len(paths) == 0:
		return "", ErrNoFIDO2App
	case len(paths) > 1:
		return "", fmt.Errorf("%d FIDO2 keys are connected and none is in the key's reader: unplug the others, or pick one with --fido2-device", len(paths))
	case strings.HasPrefix(paths[0], pcscPrefix):
		return "", fmt.Errorf("%w: the only FIDO2 key connected is in reader %q, not in the key's (%q): nothing on the key was changed",
			ErrOtherKey, strings.TrimPrefix(paths[0], pcscPrefix), info.Reader)
	}
	return paths[0], nil
}

// resetFIDO2 resets the FIDO2 application at path of the key whose PIV
// applet is info. A YubiKey takes the reset only just after it is plugged
// in, so the operator unplugs it and plugs it back in; the agent waits
// for the key to go and come back, checks it is the same key (its PIV
// serial), and sends the reset at once; the key blinks for a touch.
func (k WipeKeys) resetFIDO2(ctx context.Context, info DeviceInfo, path string) error {
	wait := durationOr(k.ReplugWait, 2*time.Minute)
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	k.prompt("Now reset the key's FIDO2 application: unplug the key, plug it back in, and touch it when it blinks " +
		"(a YubiKey takes a FIDO2 reset only in its first seconds after it is plugged in).")
	if err := k.poll(ctx, func() (bool, error) { return k.gone(path), nil }); err != nil {
		return fmt.Errorf("%w: it was not unplugged within %v", ErrReplugTimeout, wait)
	}
	k.prompt("The key is out: plug it back in, and touch it when it blinks.")
	var back string
	err := k.poll(ctx, func() (bool, error) {
		p, err := k.back(info)
		back = p
		return p != "", err
	})
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w: it was not plugged back in within %v", ErrReplugTimeout, wait)
	}
	if err != nil {
		return err
	}
	tok, err := k.FIDO2.Open(back)
	if err != nil {
		return err
	}
	defer tok.Close()
	if err := tok.Reset(); err != nil {
		if errors.Is(err, ErrResetWindow) {
			return fmt.Errorf("%w (it reached the key more than a few seconds after the key was plugged back in)", err)
		}
		return fmt.Errorf("resetting the FIDO2 application: %w", err)
	}
	return nil
}

// gone reports whether the key is unplugged: its reader has no card and
// its FIDO2 path is not listed.
func (k WipeKeys) gone(path string) bool {
	if _, err := k.Serial(k.Reader); err == nil {
		return false
	}
	paths, err := k.FIDO2.Devices()
	return err == nil && !slices.Contains(paths, path)
}

// back returns the FIDO2 path of the key once it is plugged back in ("":
// not yet), after checking its PIV serial is the wiped key's. Errors wrap
// ErrOtherKey.
func (k WipeKeys) back(info DeviceInfo) (string, error) {
	serial, err := k.Serial(k.Reader)
	if err != nil {
		return "", nil // not back yet, or still starting up
	}
	if serial != info.Serial {
		return "", fmt.Errorf("%w: key %d was plugged in, not key %d; plug key %d in and run the command again", ErrOtherKey, serial, info.Serial, info.Serial)
	}
	if paths, err := k.FIDO2.Devices(); err == nil && k.FIDO2Path != "" && slices.Contains(paths, k.FIDO2Path) {
		return k.FIDO2Path, nil
	}
	k.FIDO2Path = "" // a USB key may come back under another HID path
	path, err := k.findFIDO2(info)
	if errors.Is(err, ErrNoFIDO2App) {
		return "", nil // its FIDO2 interface is not up yet
	}
	return path, err
}

// poll calls done every k.Poll until it reports true or an error, or ctx
// ends (then ctx's error).
func (k WipeKeys) poll(ctx context.Context, done func() (bool, error)) error {
	t := time.NewTicker(durationOr(k.Poll, 100*time.Millisecond))
	defer t.Stop()
	for {
		ok, err := done()
		if ok || err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

func (k WipeKeys) prompt(msg string) {
	if k.Prompt != nil {
		k.Prompt(msg)
	}
}

func durationOr(d, otherwise time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return otherwise
}
