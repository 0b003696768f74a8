package core

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/proof"
	"github.com/keyfleet/keyfleet/plugins/sdk"
)

// Fresh proof of possession (daemon/proof): an action in proof.Catalogue
// runs only with the key's answer to a challenge bound to that action,
// made by one of the acting person's own factors moments before.

// proofWords names what a proof of action must be made with.
func proofWords(action string) string {
	if proof.Catalogue[action].Strength == proof.SecondFactor {
		return "factors (a security key, or your authenticator app if you have no key)"
	}
	return "security keys (PIV or FIDO2)"
}

// needsNoProof reports whether p acts without a key: the daemon itself
// (System: init and sweeps, never reachable from a request), and a
// break-glass session (its M of N shares are its proof).
func (p Principal) needsNoProof() bool { return p.isSystem() || p.breakGlass() }

// isSystem reports whether p is the daemon acting on its own.
func (p Principal) isSystem() bool { return p.UserID == System.UserID && p.Auth == System.Auth }

// DecodeProof reads a Keyfleet-Proof header value (base64url JSON of an
// api.Proof). Errors: *ValidationError.
func DecodeProof(header string) (*api.Proof, error) {
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(strings.TrimSpace(header), "="))
	if err != nil {
		return nil, invalid(api.ProofHeader, "is not base64url: send the JSON of the proof keyfleet-agent printed, base64url-encoded")
	}
	var out api.Proof
	if err := json.Unmarshal(b, &out); err != nil || out.ID == "" || out.FactorID == "" {
		return nil, invalid(api.ProofHeader, "is not a proof: it needs id, factor_id and response")
	}
	return &out, nil
}

// EncodeProof is DecodeProof's inverse, for clients and tests.
func EncodeProof(pr api.Proof) string {
	b, _ := json.Marshal(pr)
	return base64.RawURLEncoding.EncodeToString(b)
}

// BeginProof starts a proof of one action for p: a challenge bound to the
// action, answerable by p's own active factors of the strength the action
// needs. Errors: *ValidationError (unknown action), ErrNotFound (the
// approval), ErrNoUsableFactor, *ForbiddenError.
func (s *Service) BeginProof(ctx context.Context, p Principal, in api.ProofRequest) (api.ProofChallenge, error) {
	if !proof.Known(in.Action) {
		return api.ProofChallenge{}, invalid("action", "%q needs no proof; actions that do are %s", in.Action, strings.Join(proof.Actions(), ", "))
	}
	if p.needsNoProof() || p.PassID != "" || p.EnrolmentID != "" {
		return api.ProofChallenge{}, &ForbiddenError{Principal: p.Username, Action: "proof.begin",
			Reason: "only a person signed in with their own token proves actions; a break-glass session needs no proof, a pass or enrolment code cannot give one"}
	}
	b, err := s.bindingFor(ctx, p, in)
	if err != nil {
		return api.ProofChallenge{}, err
	}
	return s.beginBound(ctx, p.UserID, p.UserID, b)
}

// bindingFor builds the binding of a proof request: an approval's from
// the stored request (what the approver sees is what they sign), any
// other action's from the request body the action will send, by the same
// function the action uses (ProofBinding).
func (s *Service) bindingFor(ctx context.Context, p Principal, in api.ProofRequest) (proof.Binding, error) {
	if len(in.Subject) > 200 {
		return proof.Binding{}, invalid("subject", "is %d bytes long; the limit is 200", len(in.Subject))
	}
	if in.Action != proof.ApprovalApprove && in.Action != proof.ApprovalDeny {
		if in.Action == proof.TokenCreate || in.Action == proof.RecoveryCodesRegen || in.Action == proof.BreakGlassShare {
			in.Subject = p.UserID // always one's own
		}
		return ProofBinding(in.Action, in.Subject, in.Request)
	}
	var a Approval
	err := s.store.View(ctx, func(tx ReadTx) error {
		var err error
		a, err = tx.Approval(in.Subject)
		return err
	})
	if err != nil {
		return proof.Binding{}, err
	}
	if err := p.authorize(DecideApprovals, ""); err != nil {
		return proof.Binding{}, err
	}
	return approvalBinding(in.Action, a), nil
}

// approvalBinding is what approving (or denying) a request signs: its id,
// action, target, parameters and requester.
func approvalBinding(action string, a Approval) proof.Binding {
	d := map[string]string{"action": a.Action, "target": a.TargetType + ":" + a.TargetID, "requested_by": a.RequestedBy.ID}
	for k, v := range a.Params {
		d["param."+k] = v
	}
	return proof.Binding{Action: action, Subject: a.ID, Details: d}
}

// beginBound makes the bound verification of userID's factors, created by
// createdBy (the person, or "login" before they hold a token).
func (s *Service) beginBound(ctx context.Context, userID, createdBy string, b proof.Binding) (api.ProofChallenge, error) {
	var u User
	var factors []Factor
	err := s.store.View(ctx, func(tx ReadTx) error {
		var err error
		u, factors, err = s.provingFactors(tx, userID, proof.Catalogue[b.Action].Strength)
		return err
	})
	if err != nil {
		return api.ProofChallenge{}, err
	}
	nonce, err := s.newChallenge()
	if err != nil {
		return api.ProofChallenge{}, err
	}
	challenge := proof.Challenge(nonce, b)
	now := s.now()
	v := Verification{ID: newID(prefixVerification, now, s.cfg.Rand), UserID: u.ID, CreatedBy: createdBy, CreatedAt: now,
		ExpiresAt: now.Add(s.cfg.ProofTTL), Factors: map[string]VerificationFactor{}, Binding: b.DigestHex()}
	out := api.ProofChallenge{Verification: api.Verification{UserID: u.ID, ExpiresAt: v.ExpiresAt},
		Action: b.Action, Subject: b.Subject, Summary: b.Summary(), Digest: v.Binding}
	for _, f := range factors {
		vf, af, _, err := s.beginFactor(ctx, u, f, v.ID, challenge, now, sdk.VerifyContext{})
		if err != nil {
			return api.ProofChallenge{}, err
		}
		v.Factors[f.ID], out.Factors = vf, append(out.Factors, af)
	}
	out.ID, err = s.sealVerification(v)
	return out, err
}

// provingFactors are the user's active, unlocked factors that may prove
// an action of strength st: hardware kinds, or for SecondFactor any kind
// when the user has no hardware factor.
func (s *Service) provingFactors(tx ReadTx, userID string, st proof.Strength) (User, []Factor, error) {
	u, err := tx.User(userID)
	if err != nil {
		return User{}, nil, err
	}
	if u.Status != api.UserActive || u.Kind == api.KindService {
		return User{}, nil, &ForbiddenError{Principal: u.Username, Action: "proof.begin", Reason: "only an active person proves actions"}
	}
	now := s.now()
	var hw, any []Factor
	err = forEach(tx.Factors, FactorFilter{UserID: u.ID, State: api.FactorActive}, func(f Factor) error {
		k, ok := s.kinds[f.Kind]
		if !ok || locked(f.LockedUntil, now) || k.info.OutOfBand { // a push proves no action: its answer is not bound to one
			return nil
		}
		if k.info.Hardware {
			hw = append(hw, f)
		}
		any = append(any, f)
		return nil
	})
	switch {
	case err != nil:
		return User{}, nil, err
	case locked(u.LockedUntil, now):
		return User{}, nil, fmt.Errorf("%w: %s until %s; an administrator can unlock sooner", ErrLocked, u.Username, u.LockedUntil.Format("2006-01-02 15:04 MST"))
	case len(hw) > 0:
		return u, hw, nil
	case st == proof.SecondFactor && len(any) > 0:
		return u, any, nil
	case st == proof.SecondFactor:
		return User{}, nil, fmt.Errorf("%w: %s has no active factor to prove this with", ErrNoUsableFactor, u.Username)
	}
	return User{}, nil, fmt.Errorf("%w: %s has no active security key (PIV or FIDO2) to prove this with; enrol one first (keyfleet-agent enroll)", ErrNoUsableFactor, u.Username)
}

// proofReceipt says which factor proved an action.
type proofReceipt struct {
	FactorID, Kind string
}

// note adds the receipt to an audit event's extra fields.
func (r proofReceipt) note(ev *eventCtx) {
	if r.FactorID == "" {
		return
	}
	if ev.extra == nil {
		ev.extra = map[string]string{}
	}
	ev.extra["proof_factor_id"], ev.extra["proof_kind"] = r.FactorID, r.Kind
}

// prove checks p's proof of b and uses it up. It runs in its own
// transaction, before the action's: a wrong answer counts towards lockout
// whatever the action then does, and a proof is spent even if the action
// fails (ask for a new one). Principals that act without a key get an
// empty receipt. Errors: *ProofError, ErrLocked.
func (s *Service) prove(ctx context.Context, p Principal, b proof.Binding) (proofReceipt, error) {
	if p.needsNoProof() {
		return proofReceipt{}, nil
	}
	if p.Proof == nil {
		return proofReceipt{}, &ProofError{Action: b.Action, Reason: "none came with the request"}
	}
	v, ok := s.openVerificationID(p.Proof.ID)
	switch {
	case !ok || v.Binding == "":
		return proofReceipt{}, &ProofError{Action: b.Action, Reason: "the proof is not one keyfleetd issued for an action"}
	case v.UserID != p.UserID:
		return proofReceipt{}, &ProofError{Action: b.Action, Reason: "the proof was made for someone else; each person proves with their own key"}
	case v.Binding != b.DigestHex():
		return proofReceipt{}, &ProofError{Action: b.Action, Reason: "the proof was made for another action or other details; ask for a proof of this one"}
	case !s.now().Before(v.ExpiresAt):
		return proofReceipt{}, &ProofError{Action: b.Action, Reason: "the proof expired; ask for a new one and answer it at once"}
	}
	vf, ok := v.Factors[p.Proof.FactorID]
	if !ok {
		return proofReceipt{}, &ProofError{Action: b.Action, Reason: "the answer names a factor the challenge did not offer"}
	}
	var res api.VerifyResult
	err := s.store.Update(ctx, func(tx Tx) error {
		fresh, err := tx.UseVerification(v.ID, v.ExpiresAt)
		if err != nil {
			return err
		}
		if !fresh {
			return &ProofError{Action: b.Action, Reason: "the proof was used already; each proof allows one action"}
		}
		u, err := tx.User(v.UserID)
		if err != nil {
			return err
		}
		f, err := tx.Factor(p.Proof.FactorID)
		if err != nil {
			return err
		}
		if f.UserID != u.ID {
			return &ProofError{Action: b.Action, Reason: "the factor is not yours"}
		}
		res, _, err = s.answer(ctx, tx, p, v, vf, u, f, p.Proof.Response, 0)
		return err
	})
	if err != nil {
		return proofReceipt{}, err
	}
	if !res.OK {
		return proofReceipt{}, &ProofError{Action: b.Action, Reason: "the key's answer was not accepted (wrong key or PIN); the failure counts towards lockout"}
	}
	return proofReceipt{FactorID: res.FactorID, Kind: res.Kind}, nil
}

// details is a small helper for bindings built from request fields.
func details(kv ...string) map[string]string {
	m := make(map[string]string, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] != "" {
			m[kv[i]] = kv[i+1]
		}
	}
	return m
}

// joined is a sorted, comma-joined copy of a list, for bindings.
func joined(list []string) string {
	c := slices.Clone(list)
	slices.Sort(c)
	return strings.Join(c, ",")
}

// ProofBinding is the binding of a proof of action about subject, from the
// JSON body the action sends (nil or empty when it has none). The actions
// build their bindings with the same functions, so a proof asked for with
// one body is refused for another. Errors: *ValidationError.
func ProofBinding(action, subject string, body json.RawMessage) (proof.Binding, error) {
	decode := func(v any) error {
		if len(body) == 0 {
			return nil
		}
		if err := json.Unmarshal(body, v); err != nil {
			return invalid("request", "is not the body of %s: %v", action, err)
		}
		return nil
	}
	switch action {
	case proof.PolicyApply:
		var in struct {
			Document string `json:"document"`
			Version  int    `json:"version"`
		}
		if err := decode(&in); err != nil {
			return proof.Binding{}, err
		}
		if in.Version > 0 {
			return RollbackBinding(in.Version), nil
		}
		return PolicyBinding(in.Document), nil
	case proof.BreakGlassRotate:
		var in api.BreakGlassRotate
		err := decode(&in)
		return RotateBinding(in), err
	case proof.PassIssue:
		var in api.IssuePass
		err := decode(&in)
		return passBinding(subject, in), err
	case proof.TokenCreate:
		var in api.CreateToken
		err := decode(&in)
		return tokenBinding(action, subject, in), err
	case proof.FactorAdd:
		var in api.CreateEnrolment
		err := decode(&in)
		return addBinding(subject, in.Kind), err
	case proof.FactorRemove, proof.RecoveryCodesRegen, proof.BreakGlassShare:
		return proof.Binding{Action: action, Subject: subject}, nil
	}
	return proof.Binding{}, invalid("action", "%q is proved with POST /v1/proofs only for its own kind of request", action)
}
