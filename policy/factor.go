package policy

import (
	"fmt"
	"slices"
	"time"

	"github.com/keyfleet/keyfleet/attest"
)

// facts are what evaluation derives once per factor.
type facts struct {
	f          Factor
	advisories []attest.Advisory // known advisories affecting its hardware
	firmware   attest.Version
	hasFW      bool
	lastActive time.Time
	label      string // name(), once asked for
}

func factFor(f Factor) facts {
	fc := facts{f: f, lastActive: f.CreatedAt}
	switch {
	case f.LastUsedAt != nil:
		fc.lastActive = *f.LastUsedAt
	case f.ActivatedAt != nil:
		fc.lastActive = *f.ActivatedAt
	}
	if ev := f.Evidence; ev != nil {
		fc.firmware, fc.hasFW = parseVersion(ev.Firmware)
		fc.advisories = advisoriesOf(ev, fc.firmware, fc.hasFW)
	}
	return fc
}

// formFactorBytes maps attest's form factor names back to the byte the
// advisory table matches on. Built once from attest.FormFactorName.
var formFactorBytes = func() map[string]byte {
	m := make(map[string]byte)
	for b := byte(1); b < 0x80; b++ {
		name := attest.FormFactorName(b)
		if _, dup := m[name]; !dup {
			m[name] = b
		}
	}
	return m
}()

// advisoriesOf matches the evidence against today's advisory table, and
// keeps any advisory recorded at enrolment too. Sorted by ID.
func advisoriesOf(ev *attest.Evidence, fw attest.Version, hasFW bool) []attest.Advisory {
	out := ev.Advisories
	if hasFW {
		df := attest.DeviceFacts{Vendor: ev.Vendor, Firmware: fw,
			FormFactor: formFactorBytes[ev.FormFactor], KeyAlgorithm: ev.KeyAlgorithm}
		for _, r := range knownAdvisories {
			if r.Affects(df) && !slices.ContainsFunc(out, func(a attest.Advisory) bool { return a.ID == r.ID }) {
				out = append(slices.Clip(out), r.Advisory) // never append into the evidence's array
			}
		}
	}
	if len(out) > len(ev.Advisories) {
		slices.SortFunc(out, func(a, b attest.Advisory) int { return cmpString(a.ID, b.ID) })
	}
	return out
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// stale reports whether an active factor has gone unused too long.
func (fc *facts) stale(req *Requirements, now time.Time) bool {
	return req.MaxInactivity > 0 && now.Sub(fc.lastActive) > req.MaxInactivity
}

// check returns every requirement the factor fails (nil when none), each
// as a reason naming the factor. Staleness is checked separately. quick
// leaves the messages out, for callers that only count.
func (fc *facts) check(req *Requirements, quick bool) []Reason {
	c := checker{id: fc.f.ID, quick: quick}
	add := c.add
	f, ev := fc.f, fc.f.Evidence
	if req.AllowedKinds != nil && !slices.Contains(req.AllowedKinds, f.Kind) {
		add(CodeKindNotAllowed, "%s is not of a kind the policy allows (only %s)", fc.name(), orNothing(req.AllowedKinds))
	}
	if req.AttestationRequired && !attested(ev) {
		add(CodeAttestationMissing, "%s has no verified attestation; the policy requires keys that prove what they are", fc.name())
	}
	if req.FIPSRequired && (ev == nil || !ev.FIPS || !attested(ev)) {
		add(CodeFIPSRequired, "%s is not attested FIPS-series hardware; the policy requires it", fc.name())
	}
	if req.AllowedVendors != nil && (f.Hardware || ev != nil) {
		fc.checkVendor(req, add)
	}
	if f.Kind == "fido2" {
		fc.checkAAGUID(req, add)
	}
	if f.Kind == "piv" {
		fc.checkPIV(req, add)
	}
	if f.Kind == "totp" {
		fc.checkTOTP(req, add)
	}
	if f.Kind == "push" && req.PushNumberMatching && f.Params["number_matching"] != "true" {
		add(CodeNumberMatching, "%s approves pushes without number matching; the policy requires it: enrol the companion again", fc.name())
	}
	fc.checkFirmware(req, add)
	fc.checkAdvisories(req, add)
	return c.out
}

type adder func(code, format string, args ...any)

// checker collects the reasons a factor fails.
type checker struct {
	id    string
	quick bool
	out   []Reason
}

func (c *checker) add(code, format string, args ...any) {
	r := Reason{Code: code, FactorID: c.id}
	if !c.quick {
		r.Message = fmt.Sprintf(format, args...)
	}
	c.out = append(c.out, r)
}

// parseVersion reads "5.7.4" as attest.ParseVersion does, without
// allocating: it runs for every factor at every evaluation.
func parseVersion(s string) (attest.Version, bool) {
	var n [3]int
	part, digits := 0, 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9' && digits < 3:
			n[part], digits = n[part]*10+int(c-'0'), digits+1
		case c == '.' && digits > 0 && part < 2:
			part, digits = part+1, 0
		default:
			return attest.Version{}, false
		}
	}
	if part != 2 || digits == 0 || n[0] > 255 || n[1] > 255 || n[2] > 255 {
		return attest.Version{}, false
	}
	return attest.Version{Major: n[0], Minor: n[1], Patch: n[2]}, true
}

// attested: the evidence comes from a verified chain, not a self-signed
// or absent statement.
func attested(ev *attest.Evidence) bool {
	return ev != nil && ev.AttestationType != attest.AttestationSelf &&
		ev.AttestationType != attest.AttestationNone && ev.AttestationType != ""
}

func (fc *facts) checkVendor(req *Requirements, add adder) {
	ev := fc.f.Evidence
	switch {
	case !attested(ev) || ev.Vendor == "":
		add(CodeVendorNotAllowed, "%s does not prove its maker; the policy allows only keys from %s", fc.name(), orNothing(req.AllowedVendors))
	case !slices.Contains(req.AllowedVendors, ev.Vendor):
		add(CodeVendorNotAllowed, "%s is made by %s; the policy allows only keys from %s", fc.name(), ev.Vendor, orNothing(req.AllowedVendors))
	}
}

// checkAAGUID applies the allow and deny lists. Only an attested AAGUID
// is trusted: an unattested one cannot pass an allow list, and cannot
// prove it is not on a deny list. A claimed AAGUID on the deny list is
// refused whether attested or not.
func (fc *facts) checkAAGUID(req *Requirements, add adder) {
	if req.AllowedAAGUIDs == nil && req.DeniedAAGUIDs == nil {
		return
	}
	ev := fc.f.Evidence
	aaguid, trusted := "", false
	if ev != nil {
		aaguid, trusted = ev.AAGUID, ev.AAGUIDAttested
	}
	switch {
	case aaguid != "" && slices.Contains(req.DeniedAAGUIDs, aaguid):
		add(CodeAAGUIDDenied, "%s is a model (AAGUID %s) the policy denies", fc.name(), aaguid)
	case !trusted:
		add(CodeAAGUIDUnattested, "%s does not prove its model (its AAGUID is not attested), so the policy's AAGUID lists cannot accept it", fc.name())
	case req.AllowedAAGUIDs != nil && !slices.Contains(req.AllowedAAGUIDs, aaguid):
		add(CodeAAGUIDNotAllowed, "%s is a model (AAGUID %s) that is not on the policy's allow list", fc.name(), aaguid)
	}
}

// checkPIV applies the PIN and touch policies. A PIV factor without
// evidence cannot prove its policies.
func (fc *facts) checkPIV(req *Requirements, add adder) {
	ev := fc.f.Evidence
	pin, touch := "unknown", "unknown"
	if attested(ev) {
		pin, touch = ev.PINPolicy, ev.TouchPolicy
	}
	if req.PINPolicies != nil && !slices.Contains(req.PINPolicies, pin) {
		add(CodePINPolicy, "%s has PIN policy %s; the policy requires %s", fc.name(), pin, orNothing(req.PINPolicies))
	}
	if req.TouchPolicies != nil && !slices.Contains(req.TouchPolicies, touch) {
		add(CodeTouchPolicy, "%s has touch policy %s; the policy requires %s", fc.name(), touch, orNothing(req.TouchPolicies))
	}
}

// checkTOTP applies the TOTP parameter lists to a TOTP factor's public
// parameters. A factor whose parameters the caller does not know (Params
// nil) is not judged on them.
func (fc *facts) checkTOTP(req *Requirements, add adder) {
	if fc.f.Params == nil {
		return
	}
	for _, l := range []struct {
		param, what string
		accepted    []string
	}{
		{"algorithm", "algorithm", req.TOTPAlgorithms},
		{"digits", "code length", req.TOTPDigits},
		{"period", "time step (seconds)", req.TOTPPeriods},
	} {
		v := fc.f.Params[l.param]
		if l.accepted != nil && !slices.Contains(l.accepted, v) {
			add(CodeTOTPParameters, "%s has %s %s; the policy requires %s", fc.name(), l.what, orUnknown(v), orNothing(l.accepted))
		}
	}
}

// checkFirmware applies min_firmware to attested keys of a listed model
// line. Keys that prove no model are left to attestation_required.
func (fc *facts) checkFirmware(req *Requirements, add adder) {
	ev := fc.f.Evidence
	if !attested(ev) {
		return
	}
	least, ok := req.minFirmwareFor(ev.Model)
	if !ok {
		return
	}
	if !fc.hasFW || fc.firmware.Less(least) {
		add(CodeFirmwareTooOld, "%s runs firmware %s, below the %s the policy requires for %s",
			fc.name(), orUnknown(ev.Firmware), least, ev.Model)
	}
}

func (fc *facts) checkAdvisories(req *Requirements, add adder) {
	for _, a := range fc.advisories {
		if slices.Contains(req.BlockAdvisories, a.ID) {
			add(CodeAdvisoryBlocked, "%s is affected by advisory %s (%s), which the policy blocks", fc.name(), a.ID, a.Summary)
		}
	}
}

// name says which factor, for people: "the piv key f1 (YubiKey 5 #123)".
func (fc *facts) name() string {
	if fc.label == "" {
		fc.label = fc.describe()
	}
	return fc.label
}

func (fc *facts) describe() string {
	f, ev := fc.f, fc.f.Evidence
	noun := "factor"
	if f.Hardware {
		noun = "key"
	}
	switch {
	case ev != nil && ev.Model != "" && ev.Serial != 0:
		return fmt.Sprintf("%s %s %s (%s, serial %d)", f.Kind, noun, f.ID, ev.Model, ev.Serial)
	case ev != nil && ev.Model != "":
		return fmt.Sprintf("%s %s %s (%s)", f.Kind, noun, f.ID, ev.Model)
	}
	return fmt.Sprintf("%s %s %s", f.Kind, noun, f.ID)
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}
