package web

import (
	"github.com/keyfleet/keyfleet/api"
)

// proofBegin asks the domain for a challenge bound to one action, for the
// signed-in user's own keys, and hands the browser one WebAuthn request
// for them (as sign-in does). The page's script answers it with the key
// and sends the answer with the action itself (the form field "proof",
// or the Keyfleet-Proof header): an approval, a policy, a pass for a
// staff account, a factor added or removed, new recovery codes. Nothing
// is kept in the session: the challenge travels sealed in its id, and
// the domain checks that the answer is for that action and this person.
func (h *handler) proofBegin(rq *request) error {
	var in api.ProofRequest
	if err := readJSON(rq, &in); err != nil {
		return err
	}
	ch, err := h.svc.BeginProof(rq.ctx, rq.p, in)
	if err != nil {
		return err
	}
	out := []keyChallenge{}
	for _, f := range ch.Factors {
		if f.Kind != h.cfg.KeyKind {
			continue // the pages answer with security keys (WebAuthn)
		}
		out = append(out, keyChallenge{FactorID: f.FactorID, Label: f.Label, Options: f.Prompt})
	}
	if len(out) == 0 {
		return errNoKey
	}
	answer := map[string]any{"id": ch.ID, "summary": ch.Summary, "factors": out}
	if opts, creds, ok := mergeRequests(out); ok {
		answer["options"], answer["credentials"] = opts, creds
	}
	writeJSON(rq.w, 201, answer)
	return nil
}
