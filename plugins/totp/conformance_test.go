package totp_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/keyfleet/keyfleet/plugins/sdk"
	"github.com/keyfleet/keyfleet/plugins/sdk/sdktest"
	"github.com/keyfleet/keyfleet/plugins/totp"
)

// driver plays an authenticator app for sdktest.
var driver = sdktest.Driver{
	Enrol: func(t testing.TB, req sdk.BeginEnrolRequest, begun sdk.BeginEnrolResponse) ([]byte, sdktest.Authenticator) {
		a := appFrom(t, begun)
		return codeJSON(a.code(t, req.Now)), a
	},
	Options: map[string]string{"algorithm": "SHA256", "digits": "8"},
}

// Respond reads the current code.
func (a *app) Respond(t testing.TB, req sdk.BeginVerifyRequest, _ sdk.BeginVerifyResponse) []byte {
	return codeJSON(a.code(t, req.Now))
}

// Wrong reads the code of a day later, which is outside the window.
func (a *app) Wrong(t testing.TB, req sdk.BeginVerifyRequest, _ sdk.BeginVerifyResponse) []byte {
	c := a.code(t, req.Now.Add(24*time.Hour))
	if c == a.code(t, req.Now) {
		c = c[1:] + c[:1]
	}
	b, _ := json.Marshal(map[string]string{"code": c})
	return b
}

func TestConformanceInProcess(t *testing.T) {
	sdktest.Run(t, func(*testing.T) sdk.Factor { return totp.Factor{} }, driver)
}

func TestConformanceOverGRPC(t *testing.T) {
	sdktest.Run(t, func(t *testing.T) sdk.Factor { return sdktest.GRPC(t, totp.Factor{}) }, driver)
}

func TestConformanceAsPluginBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts the plugin binary")
	}
	bin := sdktest.Build(t, "github.com/keyfleet/keyfleet/cmd/keyfleet-plugin-totp", "totp")
	f := sdktest.Plugin(t, bin, nil)
	sdktest.Run(t, func(*testing.T) sdk.Factor { return f }, driver)
}
