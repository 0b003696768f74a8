package cli_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/keyfleet/keyfleet/internal/cli"
)

const vectors = "../../testdata/attest/"

func TestAttestCommandsVerifyFilesOffline(t *testing.T) {
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"a real YubiKey 5 pair verifies", []string{"attest", "piv", "--slot-cert", vectors + "piv/ovh-fw574-9a-slot.pem",
			"--device-cert", vectors + "piv/ovh-fw574-f9-device.pem"}, 0, "Serial:          32718477"},
		{"a pair from two keys is refused", []string{"attest", "piv", "--slot-cert", vectors + "piv/ovh-fw574-9a-slot.pem",
			"--device-cert", vectors + "piv/ovh-fw435-f9-device.pem"}, 1, "different YubiKeys"},
		{"firmware 5.4.3 shows the EUCLEAK advisory", []string{"attest", "piv", "--slot-cert", vectors + "piv/pivgo-2016root-9a-slot.pem",
			"--device-cert", vectors + "piv/pivgo-2016root-f9-device.pem", "--at", "2019-01-01T00:00:00Z", "-o", "json"}, 0, `"YSA-2024-03"`},
		{"a WebAuthn registration verifies", []string{"attest", "webauthn", "--file",
			vectors + "webauthn/go-webauthn/attestation_fido_u2f__u2fTestResponse.json", "--at", "2026-11-27T00:00:00Z"}, 0, "Format:          fido-u2f"},
		{"a bad time is a usage error", []string{"attest", "piv", "--slot-cert", "x", "--device-cert", "y", "--at", "yesterday"}, 2, "RFC 3339"},
		{"a missing file is a usage error", []string{"attest", "csr", "--file", "/nonexistent"}, 2, "reading --file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := cli.Run(context.Background(), tt.args, nil, &out, &errb, func(string) string { return "" })
			if code != tt.code || !strings.Contains(out.String()+errb.String(), tt.want) {
				t.Fatalf("exit %d (want %d)\n%s%s", code, tt.code, out.String(), errb.String())
			}
		})
	}
}
