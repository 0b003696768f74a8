package api

import "time"

// AttestRequest is the body of POST /v1/attest/verify: attestation to check
// against the daemon's trusted roots, without enrolling anything.
type AttestRequest struct {
	// Format is piv (slot and device certificates), csr (a CSR carrying
	// them) or webauthn (a registration).
	Format     string `json:"format"`
	SlotCert   string `json:"slot_cert,omitempty"`   // PEM
	DeviceCert string `json:"device_cert,omitempty"` // PEM
	CSR        string `json:"csr,omitempty"`         // PEM
	// WebAuthn: the registration's bytes (base64) and what it must match.
	AttestationObject []byte   `json:"attestation_object,omitempty"`
	ClientDataJSON    []byte   `json:"client_data_json,omitempty"`
	Challenge         []byte   `json:"challenge,omitempty"`
	Origins           []string `json:"origins,omitempty"`
	RPID              string   `json:"rp_id,omitempty"`
	// At verifies as of that time (default now).
	At *time.Time `json:"at,omitempty"`
}
