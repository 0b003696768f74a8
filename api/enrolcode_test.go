package api_test

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/keyfleet/keyfleet/api"
)

func ExampleEnrolmentCode() {
	code := api.EnrolmentCode("enr_06h1abc", []byte{0xfb, 0xff, 0x01})
	id, challenge, ok := api.ParseEnrolmentCode(code)
	fmt.Println(code, id, challenge, ok)
	// Output: enr_06h1abc.-_8B enr_06h1abc [251 255 1] true
}

func TestParseEnrolmentCodeRefusesWhatIsNotOne(t *testing.T) {
	tests := []struct {
		name, code string
		ok         bool
	}{
		{"a code with spaces around it", "  enr_1.AAEC \n", true},
		{"an access pass", "kfp-abcde-fghij-klmno-pqrst", false},
		{"no challenge", "enr_1.", false},
		{"no dot", "enr_1AAEC", false},
		{"another id prefix", "fac_1.AAEC", false},
		{"padded base64", "enr_1.AAEC==", false},
		{"an id too long to be one", "enr_" + string(bytes.Repeat([]byte("a"), 61)) + ".AAEC", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, ok := api.ParseEnrolmentCode(tt.code)
			if ok != tt.ok {
				t.Fatalf("ParseEnrolmentCode(%q) ok = %v, want %v", tt.code, ok, tt.ok)
			}
			if tt.ok != api.IsEnrolmentCode(tt.code) && tt.ok {
				t.Fatalf("IsEnrolmentCode(%q) disagrees", tt.code)
			}
		})
	}
}
