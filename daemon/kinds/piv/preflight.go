package piv

import (
	"crypto/x509"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/attest"
)

// CheckDevice (core.DeviceChecker) is the enrolment pre-flight's look at a
// key before an agent changes it. It verifies the key's F9 device
// attestation certificate against the roots FinishEnrol will trust, checks
// its firmware against the enrolment's min_firmware, and returns the
// evidence completion would produce as far as it can be known now:
// vendor, firmware and FIPS marker from the certificate; the form factor
// (and so the model line) the agent read from the key, which completion
// checks against the attested one; the slot, algorithm and PIN and touch
// policies the enrolment's params ask the agent to generate. params are
// the enrolment's (BeginEnrol's) params. Errors say what is wrong, in
// words for the operator.
func (f *Factor) CheckDevice(in api.Preflight, params []byte, at time.Time) (*attest.Evidence, error) {
	cert, err := x509.ParseCertificate(in.DeviceCert)
	if err != nil {
		return nil, fmt.Errorf("the key's device certificate does not parse: %w", err)
	}
	fw, fips, err := attest.VerifyPIVDevice(cert, attest.PIVOptions{Time: f.now(at), Roots: f.roots()})
	if err != nil {
		return nil, err
	}
	version, err := attest.ParseVersion(fw)
	if err != nil {
		return nil, fmt.Errorf("the key's device certificate names no firmware version: %w", err)
	}
	r, err := paramsRequirements(params)
	if err != nil {
		return nil, err
	}
	if reason := r.checkFirmware(fw); reason != "" {
		return nil, fmt.Errorf("%s", reason)
	}
	return prospectiveEvidence(in, r, version, fips), nil
}

// paramsRequirements reads the requirements back from enrolment params.
func paramsRequirements(params []byte) (Requirements, error) {
	var p map[string]string
	if err := json.Unmarshal(params, &p); err != nil {
		return Requirements{}, fmt.Errorf("the enrolment's params are not the piv kind's: %w", err)
	}
	r := fromOptions(p)
	if err := r.validate(); err != nil {
		return Requirements{}, fmt.Errorf("the enrolment's params are not the piv kind's: %w", err)
	}
	return r, nil
}

// prospectiveEvidence is the evidence a key will attest once the agent
// generated the key r asks for.
func prospectiveEvidence(in api.Preflight, r Requirements, fw attest.Version, fipsMarker bool) *attest.Evidence {
	ff := in.FormFactor
	fips := fipsMarker || ff&0x80 != 0
	serial, _ := strconv.ParseUint(in.Serial, 10, 32) // only names the key in reasons
	ev := &attest.Evidence{
		Format: "piv", Vendor: attest.VendorYubico, Model: attest.YubiKeyModel(fw, ff, fips),
		Serial: uint32(serial), Firmware: fw.String(), FIPS: fips,
		PINPolicy: r.PINPolicy, TouchPolicy: r.TouchPolicy, Slot: r.Slot, KeyAlgorithm: r.Algorithm,
		AttestationType: attest.AttestationCA,
	}
	if ff != 0 {
		ev.FormFactor = attest.FormFactorName(ff)
	}
	ev.Advisories = attest.AdvisoriesFor(attest.DeviceFacts{Vendor: attest.VendorYubico, Firmware: fw,
		FormFactor: ff, KeyAlgorithm: r.Algorithm})
	return ev
}
