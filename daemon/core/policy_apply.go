package core

import (
	"context"
	"fmt"
	"strconv"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/proof"
	"github.com/keyfleet/keyfleet/policy"
)

// Approval params of policy actions.
const (
	paramSHA256             = "sha256"
	paramBaseVersion        = "base_version"
	paramWeaker             = "weaker_changes"
	paramRollbackOf         = "rollback_of"
	paramUntil              = "until"
	paramReplacementPlanned = "replacement_planned"
)

// PolicyOutcome is what applying a document did: either Version is set
// (applied at once, every user re-evaluated) or Approval (the change
// weakens the policy and waits for a second person).
type PolicyOutcome struct {
	Version      *PolicyVersion
	Approval     *Approval
	Reevaluation api.Reevaluation
}

// proposal is a document on its way to becoming a version.
type proposal struct {
	raw        string
	doc        *policy.Document
	comment    string
	rollbackOf int
}

// ApplyPolicy validates a document and makes it the next version. A
// document that weakens any requirement (policy.Weakens) is not applied:
// it waits in an approval that a different admin or security officer
// approves, and the approval applies it. Errors: ErrInvalid wrapping a
// *policy.ParseError (every problem with its line), ErrAlreadyExists (the
// document is current already), *ForbiddenError.
func (s *Service) ApplyPolicy(ctx context.Context, p Principal, in api.PolicyDocument) (PolicyOutcome, error) {
	if err := p.authorize(ApplyPolicy, ""); err != nil {
		return PolicyOutcome{}, err
	}
	if err := validText("comment", in.Comment, 500); err != nil {
		return PolicyOutcome{}, err
	}
	doc, err := parseDocument(in.Document)
	if err != nil {
		return PolicyOutcome{}, err
	}
	return s.propose(ctx, p, proposal{raw: in.Document, doc: doc, comment: in.Comment})
}

// RollbackPolicy makes an earlier version's document current again, as a
// new version, under the same rule: a rollback that weakens the policy
// needs a second person.
func (s *Service) RollbackPolicy(ctx context.Context, p Principal, in api.PolicyRollback) (PolicyOutcome, error) {
	if err := p.authorize(ApplyPolicy, ""); err != nil {
		return PolicyOutcome{}, err
	}
	if err := validText("comment", in.Comment, 500); err != nil {
		return PolicyOutcome{}, err
	}
	if in.Version < 1 {
		return PolicyOutcome{}, invalid("version", "must be a version number from 'keyfleet policy history', got %d", in.Version)
	}
	var old PolicyVersion
	err := s.store.View(ctx, func(tx ReadTx) error {
		var err error
		old, err = tx.PolicyVersion(in.Version)
		return err
	})
	if err != nil {
		return PolicyOutcome{}, err
	}
	doc, err := policy.Parse(versionName(old.Version), []byte(old.Document))
	if err != nil {
		return PolicyOutcome{}, fmt.Errorf("stored policy version %d does not parse: %v", old.Version, err)
	}
	return s.propose(ctx, p, proposal{raw: old.Document, doc: doc, comment: in.Comment, rollbackOf: old.Version})
}

// propose applies pr at once, or opens an approval when it weakens the
// current policy; then re-evaluates every user if it applied.
func (s *Service) propose(ctx context.Context, p Principal, pr proposal) (PolicyOutcome, error) {
	// A document that is current already is refused before the proof is
	// spent on it.
	err := s.store.View(ctx, func(tx ReadTx) error {
		base, err := tx.PolicyHead()
		if err != nil {
			return err
		}
		return s.notCurrent(tx, base, pr.raw)
	})
	if err != nil {
		return PolicyOutcome{}, err
	}
	b := PolicyBinding(pr.raw)
	if pr.rollbackOf > 0 {
		b = RollbackBinding(pr.rollbackOf)
	}
	receipt, err := s.prove(ctx, p, b)
	if err != nil {
		return PolicyOutcome{}, err
	}
	var out PolicyOutcome
	err = s.store.Update(ctx, func(tx Tx) error {
		out = PolicyOutcome{}
		base, cur, err := s.currentPolicy(tx)
		if err != nil {
			return err
		}
		if err := s.notCurrent(tx, base, pr.raw); err != nil {
			return err
		}
		changes := policy.Diff(cur, pr.doc)
		if policy.Weakens(cur, pr.doc) {
			a, err := s.requestPolicy(ctx, tx, p, pr, base, changes)
			out.Approval = &a
			return err
		}
		v := s.newVersion(base, pr, p.Actor())
		out.Version = &v
		ev := s.eventCtx(ctx, p, pr.comment)
		receipt.note(ev)
		return s.insertVersion(tx, ev, v, changes)
	})
	if err != nil || out.Version == nil {
		return out, err
	}
	out.Reevaluation = s.reevaluateAfterApply(ctx)
	return out, nil
}

// notCurrent refuses a document identical to the current one.
func (s *Service) notCurrent(tx ReadTx, base int, raw string) error {
	if base == 0 {
		return nil
	}
	v, err := tx.PolicyVersion(base)
	if err != nil {
		return err
	}
	if v.SHA256 == hashDocument(raw) {
		return fmt.Errorf("%w: policy version %d is this document already; nothing to apply", ErrAlreadyExists, base)
	}
	return nil
}

func (s *Service) newVersion(base int, pr proposal, by api.Actor) PolicyVersion {
	return PolicyVersion{Version: base + 1, Document: pr.raw, SHA256: hashDocument(pr.raw), AppliedBy: by,
		AppliedAt: s.now(), Comment: pr.comment, RollbackOf: pr.rollbackOf}
}

// insertVersion stores v as current and audits it with a summary of the
// changes and the document's hash (never the document).
func (s *Service) insertVersion(tx Tx, ev *eventCtx, v PolicyVersion, changes []policy.Change) error {
	if err := tx.InsertPolicyVersion(v); err != nil {
		return err
	}
	weaker, stricter, text := diffSummary(changes)
	after := map[string]any{"version": v.Version, "sha256": v.SHA256, "size": len(v.Document),
		"weaker_changes": weaker, "stricter_changes": stricter}
	if v.RollbackOf > 0 {
		after["rollback_of"] = v.RollbackOf
	}
	var before map[string]any
	if v.Version > 1 {
		prev, err := tx.PolicyVersion(v.Version - 1)
		if err != nil {
			return err
		}
		before = map[string]any{"version": prev.Version, "sha256": prev.SHA256}
	}
	ev.extra = mergeExtra(ev.extra, map[string]string{"changes": text})
	return ev.audit(tx, "policy.apply", policyTarget(v.Version), before, after)
}

func mergeExtra(a, b map[string]string) map[string]string {
	out := make(map[string]string, len(a)+len(b))
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		if v != "" {
			out[k] = v
		}
	}
	return out
}

// requestPolicy opens the approval for a weakening change and keeps the
// document beside it until it is decided.
func (s *Service) requestPolicy(ctx context.Context, tx Tx, p Principal, pr proposal, base int, changes []policy.Change) (Approval, error) {
	weaker, _, text := diffSummary(changes)
	r := request{action: api.ActionPolicyApply, perm: ApplyPolicy, target: policyTarget(base + 1),
		params: map[string]string{paramSHA256: hashDocument(pr.raw), paramBaseVersion: strconv.Itoa(base),
			paramWeaker: strconv.Itoa(weaker)}}
	if pr.rollbackOf > 0 {
		r.params[paramRollbackOf] = strconv.Itoa(pr.rollbackOf)
	}
	a, err := s.requestTx(ctx, tx, p, pr.comment, r)
	if err != nil {
		return Approval{}, err
	}
	d := PolicyDraft{ApprovalID: a.ID, Document: pr.raw, SHA256: hashDocument(pr.raw), BaseVersion: base,
		RollbackOf: pr.rollbackOf, Comment: pr.comment}
	if err := tx.PutPolicyDraft(d); err != nil {
		return Approval{}, err
	}
	ev := s.eventCtx(ctx, p, pr.comment)
	ev.extra = map[string]string{"approval_id": a.ID, "changes": text}
	return a, ev.audit(tx, "policy.propose", r.target, nil,
		map[string]any{"sha256": d.SHA256, "base_version": base, "weaker_changes": weaker})
}

// applyApproved runs inside the approval's transaction. A policy that
// moved on since the request fails the approval: the weakening was judged
// against another version.
func (s *Service) applyApproved(tx Tx, ev *eventCtx, a Approval) error {
	d, err := tx.PolicyDraft(a.ID)
	if err != nil {
		return err
	}
	head, cur, err := s.currentPolicy(tx)
	if err != nil {
		return err
	}
	if head != d.BaseVersion {
		return &TransitionError{Kind: "policy", ID: "request " + a.ID, From: fmt.Sprintf("at version %d, not %d as requested", head, d.BaseVersion),
			Action: "apply", Hint: "dry-run the document against the current policy and apply it again"}
	}
	doc, err := policy.Parse(versionName(head+1), []byte(d.Document))
	if err != nil {
		return fmt.Errorf("policy draft of %s does not parse: %v", a.ID, err)
	}
	v := s.newVersion(head, proposal{raw: d.Document, comment: d.Comment, rollbackOf: d.RollbackOf}, a.RequestedBy)
	v.ApprovedBy, v.ApprovalID = ev.approver, a.ID
	if err := s.insertVersion(tx, ev, v, policy.Diff(cur, doc)); err != nil {
		return err
	}
	return tx.DeletePolicyDraft(a.ID)
}

// afterApproved runs once an approval's transaction committed: an applied
// policy re-evaluates every user.
func (s *Service) afterApproved(ctx context.Context, a Approval) {
	if a.Action == api.ActionPolicyApply && a.State == api.ApprovalApproved {
		s.reevaluateAfterApply(ctx)
	}
}

// reevaluateAfterApply re-evaluates every user; a failure is logged and
// reported, not returned: the version is committed, and the next status,
// enrolment or verification of each user records what is missing.
func (s *Service) reevaluateAfterApply(ctx context.Context) api.Reevaluation {
	r, err := s.reevaluateAll(ctx)
	if err != nil {
		s.log.Error("re-evaluating users after a policy change", "err", err, "evaluated", r.Users)
		r.Error = err.Error()
	}
	return r
}

// PolicyBinding is what a proof for applying a document is bound to: the
// hex SHA-256 of the document's text as sent.
func PolicyBinding(raw string) proof.Binding {
	return proof.Binding{Action: proof.PolicyApply, Subject: hashDocument(raw)}
}

// RollbackBinding is what a proof for rolling back to version n is bound
// to (a version's document never changes).
func RollbackBinding(n int) proof.Binding {
	return proof.Binding{Action: proof.PolicyApply, Subject: "rollback:" + strconv.Itoa(n)}
}
