package core

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/proof"
)

// request describes a sensitive action waiting for approval.
type request struct {
	action string
	perm   Action
	target targetRef
	owner  string            // the user the action is about
	params map[string]string // Approval.Params
}

// RequestFactorRevoke asks for a factor to be revoked. Errors: ErrNotFound,
// *ForbiddenError, *TransitionError (already revoked), ErrAlreadyExists (an
// identical request is pending).
func (s *Service) RequestFactorRevoke(ctx context.Context, p Principal, id, reason string) (Approval, error) {
	return s.requestFactor(ctx, p, id, api.ActionFactorRevoke, RequestRevoke, reason)
}

// RequestFactorDelete asks for a factor and its secret material to be
// deleted.
func (s *Service) RequestFactorDelete(ctx context.Context, p Principal, id, reason string) (Approval, error) {
	return s.requestFactor(ctx, p, id, api.ActionFactorDelete, RequestFactorDel, reason)
}

func (s *Service) requestFactor(ctx context.Context, p Principal, id, action string, perm Action, reason string) (Approval, error) {
	return s.requestRemoval(ctx, p, id, action, perm, reason, false)
}

// RequestFactorRemoval asks for a factor to be revoked
// (api.ActionFactorRevoke) or deleted (api.ActionFactorDelete).
// replacementPlanned lets the user's last active factor go; without it the
// request is refused with ErrPolicyViolation (the built-in invariant).
func (s *Service) RequestFactorRemoval(ctx context.Context, p Principal, id, action, reason string, replacementPlanned bool) (Approval, error) {
	perm, ok := map[string]Action{api.ActionFactorRevoke: RequestRevoke, api.ActionFactorDelete: RequestFactorDel}[action]
	if !ok {
		return Approval{}, invalid("action", "%q is not a factor removal", action)
	}
	return s.requestRemoval(ctx, p, id, action, perm, reason, replacementPlanned)
}

func (s *Service) requestRemoval(ctx context.Context, p Principal, id, action string, perm Action, reason string, planned bool) (Approval, error) {
	return s.request(ctx, p, reason, func(tx Tx) (request, error) {
		f, err := tx.Factor(id)
		if err != nil {
			return request{}, err
		}
		if action == api.ActionFactorRevoke && f.State == api.FactorRevoked {
			return request{}, &TransitionError{Kind: "factor", ID: f.ID, From: f.State, Action: "revoke", Hint: moveHints[f.State]}
		}
		if err := s.checkRemoval(tx, f, planned); err != nil {
			return request{}, err
		}
		r := request{action: action, perm: perm, target: factorTarget(f), owner: f.UserID}
		if planned {
			r.params = map[string]string{paramReplacementPlanned: "true"}
		}
		return r, nil
	})
}

// RequestUserAction asks for a user to be disabled, deleted, or to have
// every factor revoked (reset MFA).
func (s *Service) RequestUserAction(ctx context.Context, p Principal, ref, action, reason string) (Approval, error) {
	perm, ok := map[string]Action{
		api.ActionUserDisable: RequestDisable, api.ActionUserDelete: RequestDelete, api.ActionUserResetMFA: RequestUserMFA,
	}[action]
	if !ok {
		return Approval{}, invalid("action", "%q is not a user action that needs approval", action)
	}
	return s.request(ctx, p, reason, func(tx Tx) (request, error) {
		u, err := lookupUser(tx, ref)
		if err != nil {
			return request{}, err
		}
		if action == api.ActionUserDisable && u.Status == api.UserDisabled {
			return request{}, &TransitionError{Kind: "user", ID: u.Username, From: u.Status, Action: "disable", Hint: "it is already disabled"}
		}
		return request{action: action, perm: perm, target: userTarget(u), owner: u.ID}, nil
	})
}

func (s *Service) request(ctx context.Context, p Principal, reason string, resolve func(Tx) (request, error)) (Approval, error) {
	if err := validText("reason", reason, 500); err != nil {
		return Approval{}, err
	}
	var a Approval
	err := s.store.Update(ctx, func(tx Tx) error {
		r, err := resolve(tx)
		if err != nil {
			return err
		}
		a, err = s.requestTx(ctx, tx, p, reason, r)
		return err
	})
	return a, err
}

// requestTx records a request inside a transaction the caller runs.
func (s *Service) requestTx(ctx context.Context, tx Tx, p Principal, reason string, r request) (Approval, error) {
	if err := p.authorize(r.perm, r.owner); err != nil {
		return Approval{}, err
	}
	if err := s.noDuplicate(tx, r); err != nil {
		return Approval{}, err
	}
	now := s.now()
	a := Approval{
		ID: newID(prefixApproval, now, s.cfg.Rand), Action: r.action,
		TargetType: r.target.typ, TargetID: r.target.id, TargetName: r.target.name,
		Reason: reason, State: api.ApprovalPending, RequestedBy: p.Actor(),
		RequestedAt: now, ExpiresAt: now.Add(s.cfg.ApprovalTTL), Params: r.params,
	}
	if err := tx.PutApproval(a); err != nil {
		return Approval{}, err
	}
	ev := s.eventCtx(ctx, p, reason)
	ev.extra = map[string]string{"approval_id": a.ID, "requested_action": a.Action}
	if err := ev.audit(tx, "approval.request", r.target, nil, map[string]any{"state": a.State, "expires_at": a.ExpiresAt}); err != nil {
		return Approval{}, err
	}
	if p.breakGlass() {
		return s.breakGlassApprove(ctx, tx, p, a)
	}
	return a, nil
}

// breakGlassApprove carries out a request made in a break-glass session at
// once: the one emergency path past the two-person rule, audited as such.
func (s *Service) breakGlassApprove(ctx context.Context, tx Tx, p Principal, a Approval) (Approval, error) {
	now := s.now()
	a.State, a.DecidedBy, a.DecidedAt, a.Comment = api.ApprovalApproved, ptr(p.Actor()), &now, "break-glass session: no second approver"
	if err := s.execute(ctx, tx, p, &a); err != nil {
		return Approval{}, err
	}
	if err := tx.PutApproval(a); err != nil {
		return Approval{}, err
	}
	ev := s.eventCtx(ctx, p, a.Comment)
	ev.extra = map[string]string{"approval_id": a.ID, "requested_action": a.Action}
	return a, ev.audit(tx, "approval.approve", targetRef{a.TargetType, a.TargetID, a.TargetName},
		map[string]any{"state": api.ApprovalPending}, map[string]any{"state": a.State})
}

func (s *Service) noDuplicate(tx Tx, r request) error {
	now := s.now()
	return forEach(tx.Approvals, ApprovalFilter{State: api.ApprovalPending}, func(a Approval) error {
		if a.Action == r.action && a.TargetID == r.target.id && a.stateAt(now) == api.ApprovalPending {
			return fmt.Errorf("%w: approval %s already asks to %s this %s; approve or cancel it", ErrAlreadyExists, a.ID, verb(a.Action), r.target.typ)
		}
		return nil
	})
}

func verb(action string) string {
	_, v, _ := strings.Cut(action, ".")
	return strings.ReplaceAll(v, "_", " ")
}

// GetApproval returns an approval.
func (s *Service) GetApproval(ctx context.Context, p Principal, id string) (Approval, error) {
	var a Approval
	err := s.store.View(ctx, func(tx ReadTx) error {
		var err error
		a, err = tx.Approval(id)
		return err
	})
	if err != nil {
		return Approval{}, err
	}
	if !p.Can(ReadApprovals, "") && a.RequestedBy.ID != p.UserID {
		return Approval{}, p.authorize(ReadApprovals, "")
	}
	return a, nil
}

// ListApprovals lists approvals, oldest first. state filters on the state
// as it reads now (a pending request past its expiry reads as expired).
func (s *Service) ListApprovals(ctx context.Context, p Principal, state string, pg PageReq) ([]Approval, string, error) {
	if err := p.authorize(ReadApprovals, ""); err != nil {
		return nil, "", err
	}
	f := ApprovalFilter{}
	if state != "" && state != api.ApprovalExpired {
		f.State = state
	}
	if state == api.ApprovalExpired {
		f.State = api.ApprovalPending
	}
	var out []Approval
	var next string
	err := s.store.View(ctx, func(tx ReadTx) error {
		var err error
		out, next, err = tx.Approvals(f, pg.Clamp())
		return err
	})
	now := s.now()
	if state != "" {
		out = slices.DeleteFunc(out, func(a Approval) bool { return a.stateAt(now) != state })
	}
	return out, next, err
}

// Approve executes a pending request in the same transaction that records
// the approval. The approver must not be the requester and must hold a
// role that may approve the action, and say why (comment, required).
// Errors: *ValidationError (no reason), ErrSelfApproval,
// ErrApprovalClosed, *ForbiddenError, and the action's own errors.
func (s *Service) Approve(ctx context.Context, p Principal, id, comment string) (Approval, error) {
	a, err := s.decide(ctx, p, id, comment, api.ApprovalApproved)
	var te *TransitionError
	var nf *NotFoundError
	if errors.Is(err, errVoid) {
		return s.closeAs(ctx, p, id, api.ApprovalVoid, err)
	}
	if errors.As(err, &te) || errors.As(err, &nf) {
		// The target moved on since the request: close it so it does not
		// linger, and say why.
		return s.fail(ctx, p, id, err)
	}
	if err == nil {
		s.afterApproved(ctx, a)
	}
	return a, err
}

// Deny closes a pending request without acting.
func (s *Service) Deny(ctx context.Context, p Principal, id, comment string) (Approval, error) {
	a, err := s.decide(ctx, p, id, comment, api.ApprovalDenied)
	if errors.Is(err, errVoid) {
		return s.closeAs(ctx, p, id, api.ApprovalVoid, err)
	}
	return a, err
}

// decide records a decision. The decider proves it with their own key,
// bound to this request (proofs.go), before anything else is checked in
// the deciding transaction.
func (s *Service) decide(ctx context.Context, p Principal, id, comment, state string) (Approval, error) {
	if err := p.authorize(DecideApprovals, ""); err != nil {
		s.auditRefusal(ctx, p, "approval.refused", targetRef{"approval", id, ""}, err)
		return Approval{}, err
	}
	if strings.TrimSpace(comment) == "" {
		return Approval{}, invalid("reason", "is required: say what you checked before deciding (the requester and the audit trail read it)")
	}
	if err := validText("reason", comment, 500); err != nil {
		return Approval{}, err
	}
	receipt, err := s.proveDecision(ctx, p, id, state, comment)
	if err != nil {
		s.auditRefusal(ctx, p, "approval.refused", targetRef{"approval", id, ""}, err)
		return Approval{}, err
	}
	var a Approval
	err = s.store.Update(ctx, func(tx Tx) error {
		var err error
		if a, err = s.pending(tx, id); err != nil {
			return err
		}
		if err := s.mayDecide(tx, p, a); err != nil {
			return err
		}
		now := s.now()
		a.State, a.DecidedBy, a.DecidedAt, a.Comment = state, ptr(p.Actor()), &now, comment
		if state == api.ApprovalApproved {
			if err := s.execute(ctx, tx, p, &a); err != nil {
				return err
			}
		}
		if err := tx.PutApproval(a); err != nil {
			return err
		}
		ev := s.eventCtx(ctx, p, comment)
		ev.extra = map[string]string{"approval_id": a.ID, "requested_action": a.Action, "requested_by": a.RequestedBy.ID}
		receipt.note(ev)
		ev.privileged()
		return ev.audit(tx, decisionEvents[state], targetRef{a.TargetType, a.TargetID, a.TargetName},
			map[string]any{"state": api.ApprovalPending}, map[string]any{"state": a.State})
	})
	if errors.Is(err, ErrNotIndependent) || errors.Is(err, ErrForbidden) {
		s.auditRefusal(ctx, p, "approval.refused", targetRef{"approval", id, ""}, err)
	}
	return a, err
}

// auditRefusal records, in its own write, that p was refused a sensitive
// action and why (the error's sentinel, never the request's content), so
// that an attempt to act alone is in the trail even though it changed
// nothing. Refusals for closed or missing records are not worth a record.
func (s *Service) auditRefusal(ctx context.Context, p Principal, action string, t targetRef, cause error) {
	why := refusalWords(cause)
	if why == "" {
		return
	}
	err := s.store.Update(ctx, func(tx Tx) error {
		ev := s.eventCtx(ctx, p, "")
		ev.extra = map[string]string{"refused": why}
		return ev.audit(tx, action, t, nil, nil)
	})
	if err != nil {
		s.log.Warn("auditing a refusal", "action", action, "err", err)
	}
}

// refusalWords names what refused an attempt, for the audit trail.
func refusalWords(err error) string {
	switch {
	case errors.Is(err, ErrSelfApproval):
		return "self-approval"
	case errors.Is(err, ErrNotIndependent):
		return "not-independent"
	case errors.Is(err, ErrProofRequired):
		return "proof-required"
	case errors.Is(err, ErrForbidden):
		return "forbidden"
	}
	return ""
}

// proveDecision checks the decider's proof of this one decision: bound to
// the request's id, action, target, parameters and requester.
// Whatever would be refused anyway (closed, self, wrong role, no reason)
// is refused before the proof is spent.
func (s *Service) proveDecision(ctx context.Context, p Principal, id, state, comment string) (proofReceipt, error) {
	if p.needsNoProof() {
		return proofReceipt{}, nil
	}
	var a Approval
	err := s.store.View(ctx, func(tx ReadTx) error {
		var err error
		a, err = s.pending(tx, id)
		return err
	})
	if err != nil {
		return proofReceipt{}, err
	}
	if err := s.mayDecideRoles(p, a); err != nil {
		return proofReceipt{}, err
	}
	action, verb := proof.ApprovalApprove, "approve"
	if state == api.ApprovalDenied {
		action, verb = proof.ApprovalDeny, "deny"
	}
	if strings.TrimSpace(comment) == "" {
		return proofReceipt{}, invalid("reason", "is required: say why you %s %s (what you checked)", verb, a.ID)
	}
	return s.prove(ctx, p, approvalBinding(action, a))
}

var decisionEvents = map[string]string{api.ApprovalApproved: "approval.approve", api.ApprovalDenied: "approval.deny"}

func (s *Service) pending(tx ReadTx, id string) (Approval, error) {
	a, err := tx.Approval(id)
	if err != nil {
		return Approval{}, err
	}
	if st := a.stateAt(s.now()); st != api.ApprovalPending {
		return Approval{}, fmt.Errorf("%w: approval %s is %s", ErrApprovalClosed, a.ID, st)
	}
	return a, nil
}

// mayDecide checks p may decide a: the role, not the requester, and a
// different person in fact (independence.go).
func (s *Service) mayDecide(tx ReadTx, p Principal, a Approval) error {
	if err := s.mayDecideRoles(p, a); err != nil {
		return err
	}
	return s.approverUser(tx, p, a)
}

func (s *Service) mayDecideRoles(p Principal, a Approval) error {
	if err := p.authorize(DecideApprovals, ""); err != nil {
		return err
	}
	roles := grantApprovers(a)
	if a.RequestedBy.ID == p.UserID {
		return fmt.Errorf("%w: %s asked for approval %s, so another %s must decide it (or cancel it with 'keyfleet approvals cancel %s')",
			ErrSelfApproval, p.Username, a.ID, strings.Join(roles, " or "), a.ID)
	}
	for _, r := range roles {
		if slices.Contains(p.Roles, r) {
			return nil
		}
	}
	return &ForbiddenError{Principal: p.Username, Action: DecideApprovals,
		Reason: fmt.Sprintf("%s requests need a %s to decide them", a.Action, strings.Join(roles, " or "))}
}

// errVoid: the requester was disabled or deleted before the decision.
var errVoid = errors.New("the requester was disabled or deleted before anyone decided, so the request is void")

// execute carries out an approved action. The requester is the actor of
// the resulting events and p the approver.
func (s *Service) execute(ctx context.Context, tx Tx, p Principal, ap *Approval) error {
	a := *ap
	ev := &eventCtx{s: s, ctx: ctx, p: requester(a), approver: ptr(p.Actor()), reason: a.Reason,
		extra: map[string]string{"approval_id": a.ID}}
	switch a.Action {
	case api.ActionPolicyApply:
		return s.applyApproved(tx, ev, a)
	case api.ActionRecoveryIdentity:
		return s.confirmByApproval(ctx, tx, p, a)
	case api.ActionUserAccess:
		return s.changeAccess(tx, ev, a)
	case api.ActionBreakGlassRotate:
		return s.rotateApproved(tx, ev, a)
	case api.ActionRecoveryPass:
		issued, err := s.issueApprovedPass(ctx, tx, p, a)
		ap.issued = &issued
		return err
	case api.ActionFactorRevoke, api.ActionFactorDelete:
		f, err := tx.Factor(a.TargetID)
		if err != nil {
			return err
		}
		if err := s.checkRemoval(tx, f, a.Params[paramReplacementPlanned] == "true"); err != nil {
			return err
		}
		if a.Action == api.ActionFactorDelete {
			return s.deleteFactor(tx, ev, f)
		}
		return s.revokeFactor(tx, ev, f, a.Reason)
	}
	u, err := tx.User(a.TargetID)
	if err != nil {
		return err
	}
	switch a.Action {
	case api.ActionUserDisable:
		return s.disableUser(ctx, tx, ev, u)
	case api.ActionUserDelete:
		return s.deleteUser(ctx, tx, ev, u)
	case api.ActionUserResetMFA:
		return s.resetMFA(ctx, tx, ev, u)
	case api.ActionUserExempt:
		return s.grantExemption(tx, ev, u, a)
	}
	return fmt.Errorf("approval %s: unknown action %q", a.ID, a.Action)
}

func requester(a Approval) Principal {
	r := a.RequestedBy
	return Principal{UserID: r.ID, Username: r.Name, Auth: r.Auth, TokenID: r.TokenID}
}

// fail closes an approval whose action can no longer run and returns why.
func (s *Service) fail(ctx context.Context, p Principal, id string, cause error) (Approval, error) {
	return s.closeAs(ctx, p, id, api.ApprovalFailed, cause)
}

// closeAs closes a pending approval as failed or void with the reason,
// and returns why.
func (s *Service) closeAs(ctx context.Context, p Principal, id, state string, cause error) (Approval, error) {
	var a Approval
	err := s.store.Update(ctx, func(tx Tx) error {
		var err error
		if a, err = s.pending(tx, id); err != nil {
			return err
		}
		if err := s.mayDecideRoles(p, a); err != nil {
			return err
		}
		now := s.now()
		a.State, a.DecidedBy, a.DecidedAt, a.Error = state, ptr(p.Actor()), &now, cause.Error()
		if err := tx.PutApproval(a); err != nil {
			return err
		}
		ev := s.eventCtx(ctx, p, cause.Error())
		ev.extra = map[string]string{"approval_id": a.ID, "requested_action": a.Action}
		return ev.audit(tx, "approval."+map[string]string{api.ApprovalFailed: "fail", api.ApprovalVoid: "void"}[state],
			targetRef{a.TargetType, a.TargetID, a.TargetName}, map[string]any{"state": api.ApprovalPending}, map[string]any{"state": a.State})
	})
	if err != nil {
		return Approval{}, err
	}
	return a, fmt.Errorf("approval %s could not be carried out and is now %s: %w", id, state, cause)
}

// CancelApproval lets the requester (or an admin) withdraw a pending request.
func (s *Service) CancelApproval(ctx context.Context, p Principal, id, reason string) (Approval, error) {
	if err := validText("reason", reason, 500); err != nil {
		return Approval{}, err
	}
	var a Approval
	err := s.store.Update(ctx, func(tx Tx) error {
		var err error
		if a, err = s.pending(tx, id); err != nil {
			return err
		}
		if err := p.authorize(CancelApprovals, a.RequestedBy.ID); err != nil {
			return err
		}
		now := s.now()
		a.State, a.DecidedBy, a.DecidedAt, a.Comment = api.ApprovalCancelled, ptr(p.Actor()), &now, reason
		if err := tx.PutApproval(a); err != nil {
			return err
		}
		ev := s.eventCtx(ctx, p, reason)
		ev.extra = map[string]string{"approval_id": a.ID, "requested_action": a.Action}
		return ev.audit(tx, "approval.cancel", targetRef{a.TargetType, a.TargetID, a.TargetName},
			map[string]any{"state": api.ApprovalPending}, map[string]any{"state": a.State})
	})
	return a, err
}
