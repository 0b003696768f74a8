package piv

import (
	"fmt"
	"slices"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/attest"
)

// Requirements are what an enrolment asks of the key.
type Requirements struct {
	Slot        string `json:"slot"`
	Algorithm   string `json:"algorithm"`
	PINPolicy   string `json:"pin_policy"`
	TouchPolicy string `json:"touch_policy"`
	MinFirmware string `json:"min_firmware,omitempty"`
}

// Policies from weakest to strongest; a stronger one than asked is fine.
var (
	pinPolicies   = []string{"never", "once", "always"}
	touchPolicies = []string{"never", "cached", "always"}
	algorithms    = []string{"EC-P256", "EC-P384", "RSA-2048"}
	slots         = []string{"9a", "9c", "9d", "9e"}
)

// fromOptions reads the policy's options (api.PIVParam* keys).
func fromOptions(o map[string]string) Requirements {
	return Requirements{
		Slot: o[api.PIVParamSlot], Algorithm: o[api.PIVParamAlgorithm],
		PINPolicy: o[api.PIVParamPINPolicy], TouchPolicy: o[api.PIVParamTouchPolicy],
		MinFirmware: o[api.PIVParamMinFirmware],
	}
}

// withDefaults fills empty fields from d and validates the result.
func (r Requirements) withDefaults(d Requirements) (Requirements, error) {
	pick := func(v, def string) string {
		if v == "" {
			return def
		}
		return v
	}
	r = Requirements{Slot: pick(r.Slot, d.Slot), Algorithm: pick(r.Algorithm, d.Algorithm),
		PINPolicy: pick(r.PINPolicy, d.PINPolicy), TouchPolicy: pick(r.TouchPolicy, d.TouchPolicy),
		MinFirmware: pick(r.MinFirmware, d.MinFirmware)}
	return r, r.validate()
}

func (r Requirements) validate() error {
	checks := []struct {
		name, v string
		allowed []string
	}{
		{"slot", r.Slot, slots}, {"algorithm", r.Algorithm, algorithms},
		{"pin_policy", r.PINPolicy, pinPolicies}, {"touch_policy", r.TouchPolicy, touchPolicies},
	}
	for _, c := range checks {
		if !slices.Contains(c.allowed, c.v) {
			return fmt.Errorf("%s %q is not one of %v", c.name, c.v, c.allowed)
		}
	}
	if r.MinFirmware != "" {
		if _, err := attest.ParseVersion(r.MinFirmware); err != nil {
			return fmt.Errorf("min_firmware %q is not a version", r.MinFirmware)
		}
	}
	return nil
}

func (r Requirements) params() map[string]string {
	p := map[string]string{api.PIVParamSlot: r.Slot, api.PIVParamAlgorithm: r.Algorithm,
		api.PIVParamPINPolicy: r.PINPolicy, api.PIVParamTouchPolicy: r.TouchPolicy}
	if r.MinFirmware != "" {
		p[api.PIVParamMinFirmware] = r.MinFirmware
	}
	return p
}

// check compares verified evidence with the requirements. It returns the
// reason for a rejection, or "".
func (r Requirements) check(ev *attest.Evidence) string {
	switch {
	case ev.Slot != r.Slot:
		return fmt.Sprintf("the key is in slot %q, the enrolment asks for slot %s", ev.Slot, r.Slot)
	case ev.KeyAlgorithm != r.Algorithm:
		return fmt.Sprintf("the key is %s, the enrolment asks for %s", ev.KeyAlgorithm, r.Algorithm)
	case slices.Index(pinPolicies, ev.PINPolicy) < slices.Index(pinPolicies, r.PINPolicy):
		return fmt.Sprintf("the key's PIN policy is %q, the policy requires %q", ev.PINPolicy, r.PINPolicy)
	case slices.Index(touchPolicies, ev.TouchPolicy) < slices.Index(touchPolicies, r.TouchPolicy):
		return fmt.Sprintf("the key's touch policy is %q, the policy requires %q", ev.TouchPolicy, r.TouchPolicy)
	}
	return r.checkFirmware(ev.Firmware)
}

// checkFirmware compares a key's firmware with MinFirmware. It returns
// the reason for a rejection, or "".
func (r Requirements) checkFirmware(firmware string) string {
	if r.MinFirmware == "" {
		return ""
	}
	min, _ := attest.ParseVersion(r.MinFirmware) // validated at begin
	fw, err := attest.ParseVersion(firmware)
	if err != nil || fw.Less(min) {
		return fmt.Sprintf("firmware %s is below the minimum %s", firmware, r.MinFirmware)
	}
	return ""
}
