package httpapi

import (
	"crypto/x509"
	"net/http"
	"time"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/attest"
	"github.com/keyfleet/keyfleet/daemon/core"
)

// AttestRoots are the extra roots the daemon trusts, besides the built-in
// Yubico set, for POST /v1/attest/verify.
type AttestRoots struct {
	PIV, FIDO2 []*x509.Certificate
}

func (h *Handler) registerAttest(roots func() AttestRoots) {
	h.route("POST /v1/attest/verify", core.VerifyAttestation, func(r *http.Request, _ core.Principal) (int, any, error) {
		var in api.AttestRequest
		if err := decode(r, &in, false); err != nil {
			return 0, nil, err
		}
		at := time.Now()
		if in.At != nil {
			at = *in.At
		}
		ev, err := verifyAttestation(in, roots(), at)
		if err != nil {
			return 0, nil, err
		}
		return http.StatusOK, ev, nil
	})
}

func verifyAttestation(in api.AttestRequest, roots AttestRoots, at time.Time) (*attest.Evidence, error) {
	var ev *attest.Evidence
	var err error
	switch in.Format {
	case "piv":
		var slot, dev *x509.Certificate
		if slot, err = attest.ParseCertificate([]byte(in.SlotCert)); err == nil {
			if dev, err = attest.ParseCertificate([]byte(in.DeviceCert)); err == nil {
				ev, err = attest.VerifyPIV(slot, dev, attest.PIVOptions{Time: at, Roots: roots.PIV})
			}
		}
	case "csr":
		var der []byte
		if der, err = attest.ParseCSR([]byte(in.CSR)); err == nil {
			ev, err = attest.VerifyPIVCSR(der, attest.PIVOptions{Time: at, Roots: roots.PIV})
		}
	case "webauthn":
		ev, err = attest.VerifyFIDO2(in.AttestationObject, in.ClientDataJSON, attest.FIDO2Expectation{
			Challenge: in.Challenge, Origins: in.Origins, RPID: in.RPID, Time: at, Roots: roots.FIDO2})
	default:
		return nil, &core.ValidationError{Field: "format", Reason: "must be piv, csr or webauthn"}
	}
	if err != nil {
		return nil, &apiError{http.StatusUnprocessableEntity, probAttestation, "Attestation refused", err.Error()}
	}
	return ev, nil
}
