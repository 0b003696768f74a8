package web

import (
	"github.com/keyfleet/keyfleet/api"
)

// codeChallenge is an authenticator app that may answer a proof with a
// code the person types in the form (a person with no security key).
type codeChallenge struct {
	FactorID string `json:"factor_id"`
	Label    string `json:"label"`
}

// proofBegin asks the domain for a challenge bound to one action, for the
// signed-in user's own keys, and hands the browser one WebAuthn request
// for them (as sign-in does); for a person with no key, whom core lets
// prove some actions with their authenticator app, it names the apps, and
// the form's code answers instead. The page's script answers it with the key
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
	out, codes := []keyChallenge{}, []codeChallenge{}
	for _, f := range ch.Factors {
		switch {
		case f.Kind == h.cfg.KeyKind:
			out = append(out, keyChallenge{FactorID: f.FactorID, Label: f.Label, Options: f.Prompt})
		case f.Kind == h.cfg.TOTPKind && len(f.Inputs) > 0:
			// Core offers the app only to a person with no key (and only
			// for the actions a second factor may prove).
			codes = append(codes, codeChallenge{FactorID: f.FactorID, Label: f.Label})
		}
	}
	if len(out) == 0 && len(codes) == 0 {
		return errNoKey
	}
	answer := map[string]any{"id": ch.ID, "summary": ch.Summary, "factors": out, "code_factors": codes}
	if opts, creds, ok := mergeRequests(out); ok {
		answer["options"], answer["credentials"] = opts, creds
	}
	writeJSON(rq.w, 201, answer)
	return nil
}
