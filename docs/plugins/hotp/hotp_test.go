package main

import (
	"encoding/base32"
	"encoding/json"
	"os"
	"testing"

	"github.com/keyfleet/keyfleet/plugins/sdk"
	"github.com/keyfleet/keyfleet/plugins/sdk/sdktest"
)

func TestRFC4226AppendixD(t *testing.T) {
	b, err := os.ReadFile("testdata/rfc4226-hotp-appendix-d.json")
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Secret  string `json:"secret_ascii"`
		Vectors []struct {
			Counter uint64 `json:"counter"`
			OTP     string `json:"otp"`
		} `json:"vectors"`
	}
	if err := json.Unmarshal(b, &v); err != nil || len(v.Vectors) != 10 {
		t.Fatalf("vectors: %v (%d)", err, len(v.Vectors))
	}
	for _, tv := range v.Vectors {
		if got := Code([]byte(v.Secret), tv.Counter); got != tv.OTP {
			t.Errorf("counter %d: %s, want %s", tv.Counter, got, tv.OTP)
		}
	}
}

// token is a hardware HOTP token: it shows the next counter's code.
type token struct {
	key     []byte
	counter uint64
}

func (k *token) next() []byte {
	b, _ := json.Marshal(map[string]string{"code": Code(k.key, k.counter)})
	k.counter++
	return b
}

func (k *token) Respond(testing.TB, sdk.BeginVerifyRequest, sdk.BeginVerifyResponse) []byte {
	return k.next()
}

func (k *token) Wrong(testing.TB, sdk.BeginVerifyRequest, sdk.BeginVerifyResponse) []byte {
	b, _ := json.Marshal(map[string]string{"code": Code(k.key, k.counter+1000)})
	return b
}

var driver = sdktest.Driver{
	Enrol: func(t testing.TB, _ sdk.BeginEnrolRequest, begun sdk.BeginEnrolResponse) ([]byte, sdktest.Authenticator) {
		key, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(begun.Display["secret"])
		if err != nil {
			t.Fatalf("Display secret: %v", err)
		}
		k := &token{key: key}
		return k.next(), k
	},
}

func TestConformance(t *testing.T) {
	t.Run("in process", func(t *testing.T) {
		sdktest.Run(t, func(*testing.T) sdk.Factor { return HOTP{} }, driver)
	})
	t.Run("over gRPC", func(t *testing.T) {
		sdktest.Run(t, func(t *testing.T) sdk.Factor { return sdktest.GRPC(t, HOTP{}) }, driver)
	})
	t.Run("as a plugin binary", func(t *testing.T) {
		f := sdktest.Plugin(t, sdktest.Build(t, ".", "hotp"), nil)
		sdktest.Run(t, func(*testing.T) sdk.Factor { return f }, driver)
	})
}
