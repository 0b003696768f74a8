package api

// Push companions' routes (docs/push.md): GET /v1/push/stream (server-sent
// events "push", with a delivery, and "closed", with PushClosed), GET
// /v1/push/pending, and POST /v1/push/answer. Each request carries a
// Keyfleet-Device header signed by the companion's device key; the
// deliveries and answers are plugins/push's Delivery and Answer.

// PushOutcome is the answer to POST /v1/push/answer: what the answer did.
type PushOutcome struct {
	OK bool `json:"ok"`
	// Outcome is approved, refused or reported; Reason says why a push
	// was refused ("the user picked the wrong number"), for the person
	// holding the device.
	Outcome string `json:"outcome"`
	Reason  string `json:"reason,omitempty"`
}
