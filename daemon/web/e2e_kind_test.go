package web_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/attest"
	"github.com/keyfleet/keyfleet/daemon/core"
	"github.com/keyfleet/keyfleet/daemon/core/coretest"
	"github.com/keyfleet/keyfleet/plugins/sdk"
)

// yubiKind is a hardware kind for the browser tests whose factors carry
// attested evidence of a YubiKey model and firmware (the enrolment's
// serial is "firmware/serial"), as PIV keys enrolled at the desk do, so
// the activity page has keys by model and firmware, and old firmware
// with a known advisory, to show. It is coretest.Key under another name.
type yubiKind struct{ coretest.Key }

func (yubiKind) Describe(context.Context) (sdk.Info, error) {
	return sdk.Info{Kind: "yubikey", DisplayName: "YubiKey (test)", Hardware: true}, nil
}

func (k yubiKind) FinishEnrol(ctx context.Context, req sdk.FinishEnrolRequest) (sdk.FinishEnrolResponse, error) {
	out, err := k.Key.FinishEnrol(ctx, req)
	if err != nil || out.Device == nil {
		return out, err
	}
	fw, serial, _ := strings.Cut(out.Device.Serial, "/")
	ev := attest.Evidence{Format: "piv", Vendor: "Yubico", Model: "YubiKey 5", Firmware: fw, FormFactor: "USB-A keychain",
		KeyAlgorithm: "EC-P256", PINPolicy: "once", TouchPolicy: "always", AttestationType: attest.AttestationBasic}
	out.Evidence, _ = json.Marshal(ev)
	out.Device.Vendor, out.Device.Model, out.Device.Firmware, out.Device.Serial = "Yubico", "YubiKey 5", fw, serial
	return out, nil
}

// addYubiKey enrols a test YubiKey on firmware fw for a user, as the desk
// would with its attestation.
func (e *env) addYubiKey(t *testing.T, user, fw, serial string) core.Factor {
	t.Helper()
	ctx := context.Background()
	en, _, err := e.svc.CreateEnrolment(ctx, core.System, api.CreateEnrolment{User: user, Kind: "yubikey"})
	if err != nil {
		t.Fatal(err)
	}
	f, err := e.svc.CompleteEnrolment(ctx, core.System, en.ID, api.CompleteEnrolment{Label: "YubiKey " + serial,
		Payload: coretest.EnrolPayload(en.Challenge, "secret-"+serial, fw+"/"+serial)})
	if err != nil {
		t.Fatal(err)
	}
	return f
}
