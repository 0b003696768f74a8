package core

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/attest"
	"github.com/keyfleet/keyfleet/policy"
)

// policyUser maps a user for the policy.
func policyUser(u User) policy.User { return policyUserOf(UserFactsOf(u)) }

// evidenceView decodes stored evidence without the certificate chain and
// key bytes, which the policy does not read: the outer fields shadow the
// embedded ones, so their base64 is never decoded.
type evidenceView struct {
	attest.Evidence
	Chain        json.RawMessage `json:"chain,omitempty"`
	PublicKey    json.RawMessage `json:"public_key"`
	CredentialID json.RawMessage `json:"credential_id,omitempty"`
}

// decodeEvidence reads the attest.Evidence a factor kind stored; nil when
// there is none or it is not evidence (a plugin's own JSON).
func decodeEvidence(raw json.RawMessage) *attest.Evidence {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	var v evidenceView
	if err := json.Unmarshal(raw, &v); err != nil || v.Format == "" {
		return nil
	}
	return &v.Evidence
}

// policyFactor maps a factor through its facts, as bulk evaluation reads
// them from the store: its evidence, and Hardware from its kind.
func (s *Service) policyFactor(f Factor) policy.Factor { return s.policyFactorOf(FactsOf(f)) }

func (s *Service) policyFactors(fs []Factor) []policy.Factor {
	out := make([]policy.Factor, len(fs))
	for i, f := range fs {
		out[i] = s.policyFactor(f)
	}
	return out
}

func policyExemptions(xs []Exemption) []policy.Exemption {
	out := make([]policy.Exemption, len(xs))
	for i, x := range xs {
		out[i] = policy.Exemption{UserID: x.UserID, Reason: x.Reason, Until: x.Until}
	}
	return out
}

// loadSubject reads what evaluating one user needs.
func loadSubject(tx ReadTx, u User) (PolicySubject, error) {
	sub := PolicySubject{User: u}
	err := forEach(tx.Factors, FactorFilter{UserID: u.ID}, func(f Factor) error {
		sub.Factors = append(sub.Factors, f)
		return nil
	})
	if err != nil {
		return sub, err
	}
	if sub.FirstApplied, err = tx.FirstApplied(u.ID); err != nil {
		return sub, err
	}
	sub.Exemptions, err = tx.Exemptions(u.ID)
	return sub, err
}

func (s *Service) evaluate(doc *policy.Document, sub PolicySubject, now time.Time) policy.Decision {
	return policy.Evaluate(doc, policyUser(sub.User), s.policyFactors(sub.Factors), sub.FirstApplied,
		policyExemptions(sub.Exemptions), now)
}

// evaluation is one user's decision and what it was made from.
type evaluation struct {
	version  int
	user     UserFacts
	subject  PolicySubject
	decision policy.Decision
}

// evaluateUser evaluates a user against the current policy in tx.
func (s *Service) evaluateUser(tx ReadTx, u User, now time.Time) (evaluation, error) {
	n, doc, err := s.currentPolicy(tx)
	if err != nil {
		return evaluation{}, err
	}
	sub, err := loadSubject(tx, u)
	if err != nil {
		return evaluation{}, err
	}
	return evaluation{version: n, user: UserFactsOf(u), subject: sub, decision: s.evaluate(doc, sub, now)}, nil
}

// noteEvaluation evaluates a user inside a write and records the rules
// that apply to them for the first time (their deadlines start).
//
// It reads the user's compact policy facts (kept in the same transactions
// as the records they come from), not their full factor records.
func (s *Service) noteEvaluation(ctx context.Context, tx Tx, userID string) error {
	n, doc, err := s.currentPolicy(tx)
	if err != nil {
		return err
	}
	facts, err := tx.UserPolicyFacts(userID)
	if err != nil {
		return err
	}
	d := s.decideFacts(doc, facts, "", s.now())
	return s.recordFirstApplied(ctx, tx, facts.User, n, d)
}

// recordFirstApplied merges d.NewlyApplied into the user's first-applied
// times, re-read inside tx so a concurrent evaluation is not overwritten,
// and audits the rules that started (deadlines count from them).
func (s *Service) recordFirstApplied(ctx context.Context, tx Tx, u UserFacts, version int, d policy.Decision) error {
	if len(d.NewlyApplied) == 0 {
		return nil
	}
	cur, err := tx.FirstApplied(u.ID)
	if err != nil {
		return err
	}
	return s.startRules(ctx, tx, u, version, d, cur)
}

// startRules records the rules d applies newly that are not in cur (the
// user's first-applied times as stored) and audits them.
func (s *Service) startRules(ctx context.Context, tx Tx, u UserFacts, version int, d policy.Decision, cur map[string]time.Time) error {
	if len(d.NewlyApplied) == 0 {
		return nil
	}
	m := maps.Clone(cur)
	if m == nil {
		m = map[string]time.Time{}
	}
	var started []string
	for rule, t := range d.NewlyApplied {
		if _, ok := m[rule]; !ok {
			m[rule] = t
			started = append(started, rule)
		}
	}
	if len(started) == 0 {
		return nil
	}
	slices.Sort(started)
	return s.rulesStarted(ctx, tx, u, version, d, m, started)
}

// rulesStarted stores the user's first-applied times m and audits the
// rules started (sorted) under d.
func (s *Service) rulesStarted(ctx context.Context, tx Tx, u UserFacts, version int, d policy.Decision, m map[string]time.Time, started []string) error {
	if err := tx.PutFirstApplied(u.ID, m); err != nil {
		return err
	}
	ev := s.event(ctx, System, "policy.rules_applied", targetRef{"user", u.ID, u.Username})
	ev.After = map[string]any{"rules": started, "status": string(d.Status), "policy_version": version}
	if !d.Deadline.IsZero() {
		ev.After["deadline"] = d.Deadline
	}
	return tx.Audit(ev)
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// checkEnrolment refuses a new factor the policy does not accept, with
// every reason. It runs after the kind verified the enrolment (so the
// evidence is verified) and before anything is stored.
func (s *Service) checkEnrolment(tx ReadTx, userID, kind string, evidence, public []byte) error {
	u, err := tx.User(userID)
	if err != nil {
		return err
	}
	_, doc, err := s.currentPolicy(tx)
	if err != nil {
		return err
	}
	f := policy.Factor{Kind: kind, State: api.FactorActive, Evidence: policyEvidence(decodeEvidence(evidence)),
		Hardware: s.kinds[kind].info.Hardware, Params: factorParams(kind, public)}
	if err := policy.CheckEnrolment(doc, policyUser(u), f); err != nil {
		return fmt.Errorf("%w: enrolment refused%s: %w; enrol a key the policy accepts ('keyfleet policy show' lists the requirements)", ErrPolicyViolation, byRules(err), err)
	}
	return nil
}

// checkVerification refuses a verification with a kind the policy does
// not accept for the user, honouring grace: a rule's kinds restrict
// sign-in from its deadline on, as its requirements do (policy.
// VerificationKinds), so the MFA status and verification agree.
// It returns the policy version it checked against.
func (s *Service) checkVerification(tx ReadTx, u User, kind string) (int, error) {
	n, doc, err := s.currentPolicy(tx)
	if err != nil {
		return 0, err
	}
	fa, err := tx.FirstApplied(u.ID)
	if err != nil {
		return n, err
	}
	if err := policy.CheckVerificationAt(doc, policyUser(u), kind, fa, s.now()); err != nil {
		return n, verificationRefused(u, err)
	}
	return n, nil
}

// checkVerificationOf is checkVerification for one factor (what the policy
// asks of how its kind verifies, too).
func (s *Service) checkVerificationOf(tx ReadTx, u User, f Factor) (int, error) {
	n, doc, err := s.currentPolicy(tx)
	if err != nil {
		return 0, err
	}
	fa, err := tx.FirstApplied(u.ID)
	if err != nil {
		return n, err
	}
	if err := policy.CheckVerificationOf(doc, policyUser(u), verifyingFactor(f), fa, s.now()); err != nil {
		return n, verificationRefused(u, err)
	}
	return n, nil
}

// verifyingFactor is what the policy reads of a factor at verification.
func verifyingFactor(f Factor) policy.Factor {
	return policy.Factor{ID: f.ID, Kind: f.Kind, State: f.State, Params: factorParams(f.Kind, f.Public)}
}

// verificationRefused says why the policy refuses a kind, and what to do.
func verificationRefused(u User, err error) error {
	return fmt.Errorf("%w: %w; verify with another factor (GET /v1/users/%s/mfa-status lists the acceptable kinds)", ErrPolicyViolation, err, u.Username)
}

// verifiableKinds keeps the factors whose kind the policy accepts for
// verification. When it drops them all, it says why. It also returns the
// policy version it checked against.
func (s *Service) verifiableKinds(tx ReadTx, u User, fs []Factor) ([]Factor, int, error) {
	version, doc, err := s.currentPolicy(tx)
	if err != nil {
		return nil, 0, err
	}
	fa, err := tx.FirstApplied(u.ID)
	if err != nil {
		return nil, version, err
	}
	now := s.now()
	var out []Factor
	var refused error
	for _, f := range fs {
		if err := policy.CheckVerificationOf(doc, policyUser(u), verifyingFactor(f), fa, now); err != nil {
			refused = verificationRefused(u, err)
			continue
		}
		out = append(out, f)
	}
	if len(out) == 0 && refused != nil {
		return nil, version, refused
	}
	return out, version, nil
}

// checkRemoval is the built-in invariant: a person's last active factor
// goes only when a replacement is planned.
func (s *Service) checkRemoval(tx ReadTx, f Factor, replacementPlanned bool) error {
	u, err := tx.User(f.UserID)
	if err != nil {
		return err
	}
	var fs []Factor
	err = forEach(tx.Factors, FactorFilter{UserID: u.ID}, func(x Factor) error {
		fs = append(fs, x)
		return nil
	})
	if err != nil {
		return err
	}
	if err := policy.CanRemove(policyUser(u), s.policyFactors(fs), f.ID, replacementPlanned); err != nil {
		return fmt.Errorf("%w: %w; enrol another factor first, or ask again with replacement_planned when a replacement is arranged", ErrPolicyViolation, err)
	}
	return nil
}
