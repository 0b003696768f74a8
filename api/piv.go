package api

// Wire types of the "piv" factor kind: the enrolment payload the agent
// sends in CompleteEnrolment.Payload, and the verification prompt and
// answer. Byte fields are base64 in JSON.
//
// Possession is proved by a signature with the slot's key over
// SHA-256(challenge): ECDSA (ASN.1 DER) for EC keys, PKCS #1 v1.5 for RSA.
// Enrolment and verification challenges are distinct random values from
// the daemon, each single use.

// PIVEnrolment is the payload that completes a "piv" enrolment.
type PIVEnrolment struct {
	// SlotCert is the slot attestation certificate (DER), from the
	// attest command (INS F9) on the slot.
	SlotCert []byte `json:"slot_cert"`
	// DeviceCert is the F9 device attestation certificate (DER).
	DeviceCert []byte `json:"device_cert"`
	// PublicKey is the key the agent generated (DER SubjectPublicKeyInfo);
	// the attested key must be this one. Optional.
	PublicKey []byte `json:"public_key,omitempty"`
	// Signature over SHA-256 of the enrolment challenge, by the slot key.
	Signature []byte `json:"signature"`
	// Handover marks a key provisioned with a random PIN printed for a
	// sealed hand-over: the factor stays pending until the user activates
	// it.
	Handover bool `json:"handover,omitempty"`
}

// PIVChallenge is a "piv" verification prompt. KeySHA256 names the key
// that must sign (hex SHA-256 of its DER SubjectPublicKeyInfo), so that a
// person with several PIV keys answers with the one enrolled for this
// factor and a key enrolled for another is not made to sign (a wrong
// signature counts towards the lockout).
type PIVChallenge struct {
	Challenge []byte `json:"challenge"`
	Slot      string `json:"slot"`
	KeySHA256 string `json:"key_sha256,omitempty"`
}

// PIVAssertion answers a PIVChallenge.
type PIVAssertion struct {
	// Signature over SHA-256 of the challenge, by the slot key.
	Signature []byte `json:"signature"`
}

// Params a "piv" enrolment carries (api.Enrolment.Params): what the
// enrolling side must generate.
const (
	PIVParamSlot        = "slot"         // "9a"
	PIVParamAlgorithm   = "algorithm"    // "EC-P256", "EC-P384", "RSA-2048"
	PIVParamPINPolicy   = "pin_policy"   // "never", "once", "always"
	PIVParamTouchPolicy = "touch_policy" // "never", "cached", "always"
	PIVParamMinFirmware = "min_firmware" // "5.7.0"; empty when any
)
