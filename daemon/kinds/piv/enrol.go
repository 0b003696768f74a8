package piv

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"strconv"
	"time"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/attest"
	"github.com/keyfleet/keyfleet/plugins/sdk"
)

// BeginEnrol returns the requirements (policy options over the defaults)
// as Params, and keeps them in State for FinishEnrol. Errors wrap
// sdk.ErrInvalidRequest for options that are not valid.
func (f *Factor) BeginEnrol(_ context.Context, req sdk.BeginEnrolRequest) (sdk.BeginEnrolResponse, error) {
	r, err := fromOptions(req.Options).withDefaults(f.cfg.Defaults)
	if err != nil {
		return sdk.BeginEnrolResponse{}, invalid("%v", err)
	}
	state, err := json.Marshal(r)
	if err != nil {
		return sdk.BeginEnrolResponse{}, err
	}
	return sdk.BeginEnrolResponse{Params: r.params(), State: state}, nil
}

// factorState is the factor's state: the key and where it lives. It holds
// no secret, but the host seals it like any state.
type factorState struct {
	PublicKey []byte `json:"public_key"` // DER SubjectPublicKeyInfo
	Slot      string `json:"slot"`
}

// publicMaterial is the factor's public part, shown in the API.
type publicMaterial struct {
	Slot         string `json:"slot"`
	KeyAlgorithm string `json:"key_algorithm"`
	PublicKey    []byte `json:"public_key"`
	Serial       uint32 `json:"serial"`
}

// FinishEnrol verifies the attestation (chain to a trusted root at the
// request's time, for the expected key), the proof of possession over the
// enrolment challenge, and the requirements. Errors wrap
// sdk.ErrInvalidRequest (a malformed payload) or, for a key that fails,
// both sdk.ErrInvalidRequest and ErrRejected, with the reason in words;
// sdk.ErrInvalidState for a state that is not this kind's.
func (f *Factor) FinishEnrol(_ context.Context, req sdk.FinishEnrolRequest) (sdk.FinishEnrolResponse, error) {
	var r Requirements
	if err := json.Unmarshal(req.State, &r); err != nil || r.validate() != nil {
		return sdk.FinishEnrolResponse{}, sdk.ErrInvalidState
	}
	p, slot, dev, err := parseEnrolment(req.Response)
	if err != nil {
		return sdk.FinishEnrolResponse{}, err
	}
	ev, err := f.verifyAttestation(slot, dev, p, f.now(req.Now))
	if err != nil {
		return sdk.FinishEnrolResponse{}, err
	}
	if !verifySignature(slot.PublicKey, req.Challenge, p.Signature) {
		return sdk.FinishEnrolResponse{}, rejected("the signature over the enrolment challenge does not verify with the attested key")
	}
	if reason := r.check(ev); reason != "" {
		return sdk.FinishEnrolResponse{}, rejected("%s", reason)
	}
	return enrolled(ev, p.Handover)
}

func parseEnrolment(raw []byte) (api.PIVEnrolment, *x509.Certificate, *x509.Certificate, error) {
	var p api.PIVEnrolment
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return p, nil, nil, invalid("the piv enrolment payload is not valid JSON: %v", err)
	}
	if len(p.SlotCert) == 0 || len(p.DeviceCert) == 0 || len(p.Signature) == 0 {
		return p, nil, nil, invalid("the piv enrolment needs slot_cert, device_cert and signature")
	}
	slot, err := x509.ParseCertificate(p.SlotCert)
	if err != nil {
		return p, nil, nil, invalid("slot_cert is not a DER certificate: %v", err)
	}
	dev, err := x509.ParseCertificate(p.DeviceCert)
	if err != nil {
		return p, nil, nil, invalid("device_cert is not a DER certificate: %v", err)
	}
	return p, slot, dev, nil
}

func (f *Factor) verifyAttestation(slot, dev *x509.Certificate, p api.PIVEnrolment, now time.Time) (*attest.Evidence, error) {
	expected := slot.PublicKey
	if len(p.PublicKey) > 0 {
		k, err := x509.ParsePKIXPublicKey(p.PublicKey)
		if err != nil {
			return nil, invalid("public_key is not a DER SubjectPublicKeyInfo: %v", err)
		}
		expected = k
	}
	ev, err := attest.VerifyPIV(slot, dev, attest.PIVOptions{Time: now, Roots: f.roots(), ExpectedPublicKey: expected})
	if err != nil {
		return nil, rejected("%v", err)
	}
	return ev, nil
}

func enrolled(ev *attest.Evidence, handover bool) (sdk.FinishEnrolResponse, error) {
	state, err := json.Marshal(factorState{PublicKey: ev.PublicKey, Slot: ev.Slot})
	if err != nil {
		return sdk.FinishEnrolResponse{}, err
	}
	pub, err := json.Marshal(publicMaterial{Slot: ev.Slot, KeyAlgorithm: ev.KeyAlgorithm, PublicKey: ev.PublicKey, Serial: ev.Serial})
	if err != nil {
		return sdk.FinishEnrolResponse{}, err
	}
	evidence, err := json.Marshal(ev)
	if err != nil {
		return sdk.FinishEnrolResponse{}, err
	}
	return sdk.FinishEnrolResponse{
		State: state, Public: pub, Evidence: evidence, Pending: handover,
		Device: &sdk.Device{Vendor: ev.Vendor, Model: ev.Model, Serial: strconv.FormatUint(uint64(ev.Serial), 10), Firmware: ev.Firmware},
	}, nil
}
