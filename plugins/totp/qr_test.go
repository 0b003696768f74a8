package totp

import (
	"bytes"
	"context"
	"encoding/base64"
	"image/png"
	"strings"
	"testing"

	"github.com/keyfleet/keyfleet/plugins/sdk"
)

func TestEnrolmentShowsTheSeedAsAQRCodePicture(t *testing.T) {
	res, err := Factor{}.BeginEnrol(context.Background(), sdk.BeginEnrolRequest{User: sdk.User{Username: "alice"}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(res.Display["uri"], "otpauth://totp/") {
		t.Fatalf("uri = %q", res.Display["uri"])
	}
	b, err := base64.StdEncoding.DecodeString(res.Display["qr_png"])
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("qr_png is not a PNG: %v", err)
	}
	if img.Bounds().Dx() != 256 {
		t.Fatalf("QR image is %d pixels wide", img.Bounds().Dx())
	}
	for k, v := range res.Params {
		if strings.Contains(v, res.Display["secret"]) {
			t.Fatalf("param %s carries the seed", k)
		}
	}
}
