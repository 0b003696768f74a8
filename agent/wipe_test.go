package agent

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/keyfleet/keyfleet/api"
)

// listOnly is a FIDO2 opener that lists paths and opens nothing.
type listOnly []string

func (l listOnly) Devices() ([]string, error)    { return l, nil }
func (listOnly) Open(string) (FIDO2Token, error) { return nil, errors.New("not opened in this test") }

func TestWipeFindsTheFIDO2ApplicationOfTheKeyItWipes(t *testing.T) {
	const reader = "Yubico YubiKey OTP+FIDO+CCID 00 00"
	tests := []struct {
		name    string
		paths   listOnly
		given   string
		want    string
		wantErr error
		errText string
	}{
		{name: "the FIDO applet in the key's own reader", paths: listOnly{"pcsc:Other reader", "pcsc:" + reader}, want: "pcsc:" + reader},
		{name: "the only USB key", paths: listOnly{"/dev/hidraw3"}, want: "/dev/hidraw3"},
		{name: "the device the operator named", paths: listOnly{"/dev/hidraw3", "/dev/hidraw4"}, given: "/dev/hidraw4", want: "/dev/hidraw4"},
		{name: "no FIDO2 key at all", paths: nil, wantErr: ErrNoFIDO2App, errText: "--no-fido2"},
		{name: "several USB keys", paths: listOnly{"/dev/hidraw3", "/dev/hidraw4"}, errText: "--fido2-device"},
		{name: "the only FIDO2 key is another reader's", paths: listOnly{"pcsc:Other reader"}, wantErr: ErrOtherKey, errText: "nothing on the key was changed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := WipeKeys{FIDO2: tt.paths, FIDO2Path: tt.given}
			got, err := k.findFIDO2(DeviceInfo{Reader: reader})
			if tt.errText != "" {
				if err == nil || !strings.Contains(err.Error(), tt.errText) || (tt.wantErr != nil && !errors.Is(err, tt.wantErr)) {
					t.Fatalf("path %q, err %v; want an error saying %q", got, err, tt.errText)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("path %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

// wipeDaemon agrees to every wipe and records the reports.
type wipeDaemon struct{ reports []api.DeviceWipe }

func (*wipeDaemon) DeviceBySerial(context.Context, string, string) (api.Device, bool, error) {
	return api.Device{ID: "dev_1", State: api.DeviceReturned}, true, nil
}
func (*wipeDaemon) CheckDeviceWipe(context.Context, string, api.DeviceWipe) (api.Device, error) {
	return api.Device{ID: "dev_1"}, nil
}
func (d *wipeDaemon) ReportDeviceWipe(_ context.Context, _ string, in api.DeviceWipe) (api.Device, error) {
	d.reports = append(d.reports, in)
	return api.Device{ID: "dev_1", State: api.DeviceInStock}, nil
}

// TestAWipeThatCannotReachTheFIDO2ApplicationChangesNothing: without the
// key's FIDO2 application, resetting its PIV applet alone would put a
// half-wiped key back in stock: the agent stops before either.
func TestAWipeThatCannotReachTheFIDO2ApplicationChangesNothing(t *testing.T) {
	tok, d := &fakeToken{}, &wipeDaemon{}
	k := WipeKeys{OpenPIV: func(string) (PIVToken, error) { return tok, nil }, FIDO2: listOnly(nil),
		Serial: func(string) (uint32, error) { return 1, nil }}
	_, _, err := Wipe(context.Background(), d, k, WipeOptions{})
	if !errors.Is(err, ErrNoFIDO2App) || len(tok.steps) != 0 || len(d.reports) != 0 {
		t.Fatalf("err %v, key steps %v, reports %v", err, tok.steps, d.reports)
	}
	k.NoFIDO2 = true
	if _, _, err := Wipe(context.Background(), d, k, WipeOptions{}); err != nil || len(tok.steps) != 1 ||
		len(d.reports) != 1 || d.reports[0] != (api.DeviceWipe{PIV: true, FIDO2: api.FIDO2Absent}) {
		t.Fatalf("a PIV-only key: err %v, key steps %v, reports %v", err, tok.steps, d.reports)
	}
}

func (f *fakeToken) Close() error { return nil }
