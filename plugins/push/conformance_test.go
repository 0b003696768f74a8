package push_test

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/keyfleet/keyfleet/plugins/push"
	"github.com/keyfleet/keyfleet/plugins/sdk"
	"github.com/keyfleet/keyfleet/plugins/sdk/sdktest"
)

// companion plays a push companion and its user for sdktest: it answers
// from the delivery, and picks the number the application's prompt shows.
type companion struct{ dev *push.Device }

var driver = sdktest.Driver{
	Enrol: func(t testing.TB, req sdk.BeginEnrolRequest, begun sdk.BeginEnrolResponse) ([]byte, sdktest.Authenticator) {
		dev, err := push.NewDevice(nil)
		if err != nil {
			t.Fatal(err)
		}
		r, err := dev.Enrol(req.EnrolmentID, begun.Params["nonce"], "test phone", "file")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(r)
		return b, companion{dev}
	},
	Options: map[string]string{"timeout": "30"},
}

func (c companion) answer(t testing.TB, req sdk.BeginVerifyRequest, begun sdk.BeginVerifyResponse, pick func(right string, choices []string) string, decision string) []byte {
	t.Helper()
	var d push.Delivery
	var p push.Prompt
	if err := json.Unmarshal(begun.Delivery, &d); err != nil {
		t.Fatalf("delivery: %v", err)
	}
	if err := json.Unmarshal(begun.Prompt, &p); err != nil {
		t.Fatalf("prompt: %v", err)
	}
	a, err := c.dev.Answer(d, pick(p.Number, d.Choices), decision, req.Now)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(a)
	return b
}

func right(n string, _ []string) string { return n }

func other(n string, choices []string) string {
	i := slices.IndexFunc(choices, func(c string) bool { return c != n })
	return choices[i]
}

func (c companion) Respond(t testing.TB, req sdk.BeginVerifyRequest, begun sdk.BeginVerifyResponse) []byte {
	return c.answer(t, req, begun, right, push.Approve)
}

// Wrong picks one of the other numbers on offer.
func (c companion) Wrong(t testing.TB, req sdk.BeginVerifyRequest, begun sdk.BeginVerifyResponse) []byte {
	return c.answer(t, req, begun, other, push.Approve)
}

func (c companion) Report(t testing.TB, req sdk.BeginVerifyRequest, begun sdk.BeginVerifyResponse) []byte {
	return c.answer(t, req, begun, func(string, []string) string { return "" }, push.Report)
}

func TestConformanceInProcess(t *testing.T) {
	sdktest.Run(t, func(*testing.T) sdk.Factor { return push.Factor{} }, driver)
}

func TestConformanceOverGRPC(t *testing.T) {
	sdktest.Run(t, func(t *testing.T) sdk.Factor { return sdktest.GRPC(t, push.Factor{}) }, driver)
}

func TestConformanceAsPluginBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts the plugin binary")
	}
	bin := sdktest.Build(t, "github.com/keyfleet/keyfleet/cmd/keyfleet-plugin-push", "push")
	f := sdktest.Plugin(t, bin, nil)
	sdktest.Run(t, func(*testing.T) sdk.Factor { return f }, driver)
}
