package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"testing"

	"github.com/keyfleet/keyfleet/plugins/sdk"
	"github.com/keyfleet/keyfleet/plugins/sdk/sdktest"
)

// device holds the P-256 key and answers what it is delivered.
type device struct{ key *ecdsa.PrivateKey }

func (d device) sign(msg []byte) string {
	h := sha256.Sum256(msg)
	r, s, _ := ecdsa.Sign(rand.Reader, d.key, h[:])
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return base64.RawURLEncoding.EncodeToString(sig)
}

func (d device) say(t testing.TB, begun sdk.BeginVerifyResponse, decision string) []byte {
	var got map[string]string
	if err := json.Unmarshal(begun.Delivery, &got); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(map[string]string{"verification_id": got["verification_id"], "factor_id": got["factor_id"],
		"decision": decision, "signature": d.sign(Message(got["verification_id"], got["factor_id"], decision))})
	return b
}

func (d device) Respond(t testing.TB, _ sdk.BeginVerifyRequest, b sdk.BeginVerifyResponse) []byte {
	return d.say(t, b, "yes")
}
func (d device) Wrong(t testing.TB, _ sdk.BeginVerifyRequest, b sdk.BeginVerifyResponse) []byte {
	return d.say(t, b, "no")
}
func (d device) Report(t testing.TB, _ sdk.BeginVerifyRequest, b sdk.BeginVerifyResponse) []byte {
	return d.say(t, b, "not-me")
}

var driver = sdktest.Driver{
	Enrol: func(t testing.TB, req sdk.BeginEnrolRequest, begun sdk.BeginEnrolResponse) ([]byte, sdktest.Authenticator) {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		pt, _ := key.PublicKey.Bytes()
		d := device{key}
		b, _ := json.Marshal(map[string]string{"public_key": base64.RawURLEncoding.EncodeToString(pt),
			"signature": d.sign(Message(req.EnrolmentID, begun.Params["nonce"], "enrol"))})
		return b, d
	},
}

func TestConformance(t *testing.T) {
	t.Run("in process", func(t *testing.T) {
		sdktest.Run(t, func(*testing.T) sdk.Factor { return Confirm{} }, driver)
	})
	t.Run("over gRPC", func(t *testing.T) {
		sdktest.Run(t, func(t *testing.T) sdk.Factor { return sdktest.GRPC(t, Confirm{}) }, driver)
	})
	t.Run("as a plugin binary", func(t *testing.T) {
		if testing.Short() {
			t.Skip("builds and starts the plugin binary")
		}
		f := sdktest.Plugin(t, sdktest.Build(t, ".", "confirm"), nil)
		sdktest.Run(t, func(*testing.T) sdk.Factor { return f }, driver)
	})
}
