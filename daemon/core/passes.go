package core

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/proof"
)

const (
	prefixPass     = "tap_"
	purposePass    = "pass"
	passDefaultTTL = time.Hour
	passMinTTL     = 10 * time.Minute
	passMaxTTL     = 8 * time.Hour
	passCodeBytes  = 13 // 100 bits, written as four groups of five
)

// passHash is what the store keeps of a pass code. Codes carry 100 random
// bits, so a fast hash is enough; the index on it finds the pass.
func passHash(code string) []byte {
	sum := sha256.Sum256([]byte("keyfleet-pass-v1:" + normalizeCode(strings.TrimPrefix(strings.ToLower(strings.TrimSpace(code)), "kfp-"))))
	return sum[:]
}

func (s *Service) newPassCode() (string, error) {
	b := make([]byte, passCodeBytes)
	if _, err := io.ReadFull(s.cfg.Rand, b); err != nil {
		return "", err
	}
	raw := idEncoding.EncodeToString(b)[:20]
	return "kfp-" + raw[:5] + "-" + raw[5:10] + "-" + raw[10:15] + "-" + raw[15:], nil
}

func passTTL(in string) (time.Duration, error) {
	if in == "" {
		return passDefaultTTL, nil
	}
	d, err := time.ParseDuration(in)
	if err != nil || d < passMinTTL || d > passMaxTTL {
		return 0, invalid("ttl", "%q must be a duration from %s to %s", in, passMinTTL, passMaxTTL)
	}
	return d, nil
}

// passRequest checks what IssuePass and IssueOnboardingPass are asked for
// and draws the code.
func (s *Service) passRequest(in *api.IssuePass) (time.Duration, string, error) {
	ttl, err := passTTL(in.TTL)
	if err != nil {
		return 0, "", err
	}
	if in.Uses == 0 {
		in.Uses = 1
	}
	if in.Uses < 1 || in.Uses > 5 {
		return 0, "", invalid("uses", "%d must be from 1 to 5", in.Uses)
	}
	code, err := s.newPassCode()
	return ttl, code, err
}

// IssuePass issues the temporary access pass of a confirmed recovery case.
// The code is returned once; issuing again replaces an unused pass. For
// an account with a role beyond "user" the pass is not issued here: the
// caller proves the request with their key, and the returned approval
// asks a second officer, who receives the pass (issueApprovedPass).
func (s *Service) IssuePass(ctx context.Context, p Principal, caseID string, in api.IssuePass) (api.IssuedPass, Approval, error) {
	if err := p.authorize(ManageRecovery, ""); err != nil {
		return api.IssuedPass{}, Approval{}, err
	}
	asked := in // the proof is bound to the request as sent
	if _, _, err := s.passRequest(&in); err != nil {
		return api.IssuedPass{}, Approval{}, err
	}
	var c RecoveryCase
	var staff bool
	err := s.store.View(ctx, func(tx ReadTx) error {
		var err error
		if c, err = s.confirmedCase(tx, caseID); err != nil {
			return err
		}
		staff, err = staffAccount(tx, c.UserID)
		return err
	})
	if err != nil {
		return api.IssuedPass{}, Approval{}, err
	}
	if staff && !p.breakGlass() {
		a, err := s.requestPass(ctx, p, targetRef{"recovery_case", c.ID, c.Username}, c.UserID, caseID, in, asked)
		return api.IssuedPass{}, a, err
	}
	var out api.IssuedPass
	err = s.store.Update(ctx, func(tx Tx) error {
		var err error
		out, err = s.makePass(ctx, tx, p, "", caseID, in)
		return err
	})
	return out, Approval{}, err
}

// staffAccount reports whether a user holds any role beyond "user".
func staffAccount(tx ReadTx, userID string) (bool, error) {
	u, err := tx.User(userID)
	if err != nil {
		return false, err
	}
	return slices.ContainsFunc(u.Roles, func(r string) bool { return r != api.RoleUser }), nil
}

// Approval params of api.ActionRecoveryPass.
const (
	paramCase         = "case_id"
	paramTTL          = "ttl"
	paramUses         = "uses"
	paramHardwareOnly = "hardware_only"
	paramAttended     = "attended"
)

func passParams(caseID string, in api.IssuePass) map[string]string {
	return details(paramCase, caseID, paramTTL, in.TTL, paramUses, strconv.Itoa(in.Uses),
		paramHardwareOnly, strconv.FormatBool(in.HardwareOnly), paramAttended, strconv.FormatBool(in.Attended))
}

// requestPass asks a second officer to issue a pass for a staff account
// (owner), proved by the requester's key.
func (s *Service) requestPass(ctx context.Context, p Principal, target targetRef, owner, caseID string, in, asked api.IssuePass) (Approval, error) {
	params := passParams(caseID, in)
	receipt, err := s.prove(ctx, p, passBinding(target.id, asked))
	if err != nil {
		return Approval{}, err
	}
	reason := "temporary access pass for " + target.name + ", a staff account"
	return s.request(ctx, p, reason, func(tx Tx) (request, error) {
		if caseID != "" {
			if _, err := s.confirmedCase(tx, caseID); err != nil {
				return request{}, err
			}
		}
		r := request{action: api.ActionRecoveryPass, perm: ManageRecovery, target: target, owner: owner, params: params}
		if receipt.FactorID != "" {
			r.params["proof_factor_id"] = receipt.FactorID
		}
		return r, nil
	})
}

// issueApprovedPass runs when a recovery.pass request is approved: the
// pass goes to the approver, who must not be the one who opened the case.
func (s *Service) issueApprovedPass(ctx context.Context, tx Tx, approver Principal, a Approval) (api.IssuedPass, error) {
	in := api.IssuePass{TTL: a.Params[paramTTL], HardwareOnly: a.Params[paramHardwareOnly] == "true", Attended: a.Params[paramAttended] == "true"}
	in.Uses, _ = strconv.Atoi(a.Params[paramUses])
	caseID := a.Params[paramCase]
	if caseID != "" {
		c, err := tx.RecoveryCase(caseID)
		if err != nil {
			return api.IssuedPass{}, err
		}
		if c.OpenedBy.ID == approver.UserID && !approver.needsNoProof() {
			return api.IssuedPass{}, &ForbiddenError{Principal: approver.Username, Action: DecideApprovals,
				Reason: "you opened this recovery case; the pass goes to a person other than the one who opened it"}
		}
		return s.makePass(ctx, tx, approver, "", caseID, in)
	}
	return s.makePass(ctx, tx, approver, a.TargetID, "", in)
}

// makePass draws and stores a pass for a confirmed case (caseID) or, for
// onboarding, a user (userID), issued by p; the code is returned once.
func (s *Service) makePass(ctx context.Context, tx Tx, p Principal, userID, caseID string, in api.IssuePass) (api.IssuedPass, error) {
	ttl, code, err := s.passRequest(&in)
	if err != nil {
		return api.IssuedPass{}, err
	}
	now := s.now()
	pass := AccessPass{ID: newID(prefixPass, now, s.cfg.Rand), UserID: userID, Hash: passHash(code), CreatedBy: p.Actor(),
		CreatedAt: now, ExpiresAt: now.Add(ttl), UsesLeft: in.Uses, HardwareOnly: in.HardwareOnly, Attended: in.Attended}
	ev := s.eventCtx(ctx, p, "")
	ev.extra = map[string]string{"pass_id": pass.ID, "purpose": "onboarding"}
	var target targetRef
	if caseID == "" {
		u, err := tx.User(userID)
		if err != nil {
			return api.IssuedPass{}, err
		}
		target = userTarget(u)
	} else {
		c, err := s.confirmedCase(tx, caseID)
		if err != nil {
			return api.IssuedPass{}, err
		}
		if err := s.replacePass(tx, c.PassID); err != nil {
			return api.IssuedPass{}, err
		}
		pass.UserID, pass.CaseID, pass.ExpiresAt = c.UserID, c.ID, earlier(pass.ExpiresAt, c.ExpiresAt)
		c.PassID = pass.ID
		if err := tx.PutRecoveryCase(c); err != nil {
			return api.IssuedPass{}, err
		}
		ev.extra = map[string]string{"case_id": c.ID, "pass_id": pass.ID}
		target = targetRef{"user", c.UserID, c.Username}
	}
	if err := tx.PutAccessPass(pass); err != nil {
		return api.IssuedPass{}, err
	}
	if err := s.handleUser(tx, pass.UserID, p, handledPassed); err != nil {
		return api.IssuedPass{}, err
	}
	return api.IssuedPass{PassID: pass.ID, Code: code, UserID: pass.UserID, ExpiresAt: pass.ExpiresAt, Uses: pass.UsesLeft,
			HardwareOnly: pass.HardwareOnly, Attended: pass.Attended},
		ev.audit(tx, "pass.issue", target, nil,
			map[string]any{"expires_at": pass.ExpiresAt, "uses": pass.UsesLeft, "hardware_only": pass.HardwareOnly, "attended": pass.Attended})
}

// IssueOnboardingPass issues a temporary access pass to a user who has
// never had a factor, so that they can register their first one (at the
// self-service page's welcome, or with keyfleet-agent enroll). A user who
// has a factor gets a pass only through a recovery case, which proves who
// they are first. For an account with a role beyond "user" it is an
// approval request, as IssuePass. The code is returned once.
func (s *Service) IssueOnboardingPass(ctx context.Context, p Principal, ref string, in api.IssuePass) (api.IssuedPass, Approval, error) {
	asked := in
	if _, _, err := s.passRequest(&in); err != nil {
		return api.IssuedPass{}, Approval{}, err
	}
	var u User
	err := s.store.View(ctx, func(tx ReadTx) error {
		var err error
		u, err = s.onboardable(tx, p, ref)
		return err
	})
	if err != nil {
		return api.IssuedPass{}, Approval{}, err
	}
	if slices.ContainsFunc(u.Roles, func(r string) bool { return r != api.RoleUser }) && !p.needsNoProof() {
		a, err := s.requestPass(ctx, p, userTarget(u), u.ID, "", in, asked)
		return api.IssuedPass{}, a, err
	}
	var out api.IssuedPass
	err = s.store.Update(ctx, func(tx Tx) error {
		if _, err := s.onboardable(tx, p, u.ID); err != nil {
			return err
		}
		var err error
		out, err = s.makePass(ctx, tx, p, u.ID, "", in)
		return err
	})
	return out, Approval{}, err
}

// onboardable finds an active person with no factor that is not revoked,
// whom p may issue a first pass for.
func (s *Service) onboardable(tx ReadTx, p Principal, ref string) (User, error) {
	u, err := lookupUser(tx, ref)
	if err != nil {
		return User{}, err
	}
	if err := p.authorize(ManageRecovery, u.ID); err != nil {
		return User{}, err
	}
	if u.Status != api.UserActive || u.Kind == api.KindService {
		return User{}, &TransitionError{Kind: "user", ID: u.Username, From: u.Status, Action: "issue an onboarding pass for",
			Hint: "only an active person enrols factors"}
	}
	// Any factor the user ever had counts, revoked ones too: a user whose
	// keys were all revoked (marked lost, say) proves who they are through
	// a recovery case, or one admin could revoke and re-enrol someone alone.
	had := 0
	err = forEach(tx.Factors, FactorFilter{UserID: u.ID}, func(f Factor) error {
		had++
		return nil
	})
	if err != nil {
		return User{}, err
	}
	if had > 0 {
		return User{}, &TransitionError{Kind: "user", ID: u.Username, From: "enrolled", Action: "issue an onboarding pass for",
			Hint: fmt.Sprintf("%s has had %d factor(s); open a recovery case (keyfleet recovery open) to prove who they are, then issue its pass", u.Username, had)}
	}
	// A first factor for an account with any role beyond "user" is an
	// administrator's decision, not the helpdesk's.
	staff := slices.ContainsFunc(u.Roles, func(r string) bool { return r != api.RoleUser })
	if staff && !slices.Contains(p.Roles, api.RoleAdmin) && !p.needsNoProof() {
		return User{}, &ForbiddenError{Principal: p.Username, Action: ManageRecovery,
			Reason: fmt.Sprintf("%s holds the roles %s; only an administrator issues their first pass", u.Username, strings.Join(u.Roles, ", "))}
	}
	return u, nil
}

func (s *Service) confirmedCase(tx ReadTx, id string) (RecoveryCase, error) {
	c, err := tx.RecoveryCase(id)
	if err != nil {
		return RecoveryCase{}, err
	}
	if st := c.stateAt(s.now()); st != api.CaseConfirmed {
		return RecoveryCase{}, &TransitionError{Kind: "recovery case", ID: c.ID, From: st, Action: "issue a pass for",
			Hint: "confirm the user's identity first: another factor, a recovery code, or an approved helpdesk check"}
	}
	return c, nil
}

// replacePass revokes a case's earlier pass, if any.
func (s *Service) replacePass(tx Tx, id string) error {
	if id == "" {
		return nil
	}
	old, err := tx.AccessPass(id)
	if err != nil {
		return err
	}
	return s.revokePass(tx, old)
}

// revokePass revokes a pass and the token it was redeemed for, if any.
func (s *Service) revokePass(tx Tx, pass AccessPass) error {
	now := s.now()
	if pass.RevokedAt == nil {
		pass.RevokedAt = &now
		if err := tx.PutAccessPass(pass); err != nil {
			return err
		}
	}
	if pass.TokenID == "" {
		return nil
	}
	t, err := tx.Token(pass.TokenID)
	if isNotFound(err) || (err == nil && t.RevokedAt != nil) {
		return nil
	}
	if err != nil {
		return err
	}
	t.RevokedAt = &now
	return tx.PutToken(t)
}

// RedeemPass turns a pass code into a token that can only enrol a factor
// for the pass's user, until the pass expires. An attended pass can only
// be redeemed by an enroller (p is that enroller; zero when unauthenticated).
func (s *Service) RedeemPass(ctx context.Context, p Principal, code string) (api.RedeemedPass, error) {
	var out api.RedeemedPass
	err := s.store.Update(ctx, func(tx Tx) error {
		pass, u, err := s.usablePass(tx, code)
		if err != nil {
			return err
		}
		if pass.Attended && !p.Can(CompleteEnrol, pass.UserID) {
			return &ForbiddenError{Principal: "this pass", Action: CompleteEnrol, Reason: "it is for an attended enrolment: an enroller must redeem it at the desk"}
		}
		now := s.now()
		t, secret, err := s.mintToken(u, "access pass "+pass.ID, []string{rolePass}, pass.ExpiresAt.Sub(now), u.ID)
		if err != nil {
			return err
		}
		t.Purpose, t.PassID = purposePass, pass.ID
		pass.RedeemedAt, pass.TokenID = &now, t.ID
		if err := tx.PutToken(t); err != nil {
			return err
		}
		if err := tx.PutAccessPass(pass); err != nil {
			return err
		}
		out = api.RedeemedPass{Token: secret, UserID: u.ID, Username: u.Username, ExpiresAt: pass.ExpiresAt, Kinds: s.passKinds(pass)}
		ev := s.eventCtx(ctx, Principal{UserID: u.ID, Username: u.Username, Auth: "pass"}, "")
		ev.extra = map[string]string{"pass_id": pass.ID, "case_id": pass.CaseID, "token_id": t.ID}
		return ev.audit(tx, "pass.redeem", userTarget(u), nil, nil)
	})
	if errors.Is(err, errPassNotValid) {
		s.auditRefusedCode(ctx, "pass.redeem_refused")
	}
	return out, err
}

// errPassNotValid is every refusal of a pass code.
var errPassNotValid = fmt.Errorf("%w: the access pass is not valid (wrong, used, or expired); ask the helpdesk for a new one", ErrUnauthenticated)

// auditRefusedCode records a refused pass or enrolment code (action): when
// and from where, never what was typed. It runs in its own write, since
// the refused one changes nothing. The tokenless endpoints' rate limit
// bounds how many there can be.
func (s *Service) auditRefusedCode(ctx context.Context, action string) {
	anon := Principal{UserID: "anonymous", Username: "anonymous", Auth: "none"}
	err := s.store.Update(ctx, func(tx Tx) error {
		return s.eventCtx(ctx, anon, "").audit(tx, action, targetRef{}, nil, nil)
	})
	if err != nil {
		s.log.Warn("auditing a refused code", "action", action, "err", err)
	}
}

// usablePass finds the pass for a code: unknown, revoked, used up and
// expired passes all read as "not valid", so a guess learns nothing.
func (s *Service) usablePass(tx ReadTx, code string) (AccessPass, User, error) {
	notValid := errPassNotValid
	pass, err := tx.AccessPassByHash(passHash(code))
	if err != nil {
		return AccessPass{}, User{}, notValid
	}
	if pass.RevokedAt != nil || pass.RedeemedAt != nil || pass.UsesLeft < 1 || !s.now().Before(pass.ExpiresAt) {
		return AccessPass{}, User{}, notValid
	}
	u, err := tx.User(pass.UserID)
	if err != nil || u.Status != api.UserActive {
		return AccessPass{}, User{}, notValid
	}
	return pass, u, nil
}

func (s *Service) passKinds(p AccessPass) []string {
	var out []string
	for name, k := range s.kinds {
		if !p.HardwareOnly || k.info.Hardware {
			out = append(out, name)
		}
	}
	return out
}

// checkPassEnrolment refuses, for a pass principal, a kind the pass does
// not allow.
func (s *Service) checkPassEnrolment(tx ReadTx, p Principal, kind string) error {
	if p.PassID == "" {
		return nil
	}
	pass, err := tx.AccessPass(p.PassID)
	if err != nil {
		return err
	}
	if pass.RevokedAt != nil || pass.UsesLeft < 1 {
		return fmt.Errorf("%w: the access pass was used or revoked; ask the helpdesk for a new one", ErrTokenRevoked)
	}
	if pass.HardwareOnly && !s.kinds[kind].info.Hardware {
		return &ForbiddenError{Principal: p.Username, Action: CreateEnrolments, Reason: fmt.Sprintf("this access pass allows only hardware keys, not %s", kind)}
	}
	return nil
}

// afterEnrol keeps a user's first recovery codes and, when a pass enrolled
// the factor, uses the pass up and closes its recovery case.
func (s *Service) afterEnrol(ctx context.Context, tx Tx, p Principal, f *Factor, codes *RecoveryCodes, plain []string) error {
	if codes != nil {
		_, err := tx.RecoveryCodes(f.UserID)
		switch {
		case isNotFound(err):
			if err := tx.PutRecoveryCodes(*codes); err != nil {
				return err
			}
			f.RecoveryCodes = plain
			if err := s.eventCtx(ctx, p, "").audit(tx, "recovery_codes.create", targetRef{"user", f.UserID, ""}, nil, map[string]any{"codes": len(plain)}); err != nil {
				return err
			}
		case err != nil:
			return err
		}
	}
	if p.PassID == "" {
		return nil
	}
	return s.usePass(ctx, tx, p, *f)
}

func (s *Service) usePass(ctx context.Context, tx Tx, p Principal, f Factor) error {
	pass, err := tx.AccessPass(p.PassID)
	if err != nil {
		return err
	}
	if pass.UsesLeft < 1 || pass.RevokedAt != nil {
		return fmt.Errorf("%w: the access pass was used up; ask the helpdesk for a new one", ErrTokenRevoked)
	}
	pass.UsesLeft--
	if err := tx.PutAccessPass(pass); err != nil {
		return err
	}
	if pass.UsesLeft == 0 {
		t, err := tx.Token(p.TokenID)
		if err != nil {
			return err
		}
		t.RevokedAt = ptr(s.now())
		if err := tx.PutToken(t); err != nil {
			return err
		}
	}
	if pass.CaseID == "" {
		return nil
	}
	return s.closeCase(ctx, tx, p, pass.CaseID, f)
}

// closeCase ends a recovery case when the replacement is enrolled: the
// lost factors are revoked now.
func (s *Service) closeCase(ctx context.Context, tx Tx, p Principal, caseID string, f Factor) error {
	c, err := tx.RecoveryCase(caseID)
	if err != nil {
		return err
	}
	ev := s.eventCtx(ctx, p, "recovery: replacement enrolled")
	ev.extra = map[string]string{"case_id": c.ID, "new_factor_id": f.ID}
	for _, id := range c.LostFactorIDs {
		lost, err := tx.Factor(id)
		if isNotFound(err) || (err == nil && lost.State == api.FactorRevoked) {
			continue
		}
		if err != nil {
			return err
		}
		if err := s.revokeFactor(tx, ev, lost, "lost; replaced through recovery case "+c.ID); err != nil {
			return err
		}
	}
	before := c.summary()
	now := s.now()
	c.State, c.NewFactorID, c.ClosedAt = api.CaseClosed, f.ID, &now
	if err := tx.PutRecoveryCase(c); err != nil {
		return err
	}
	if err := s.revokeCasePass(tx, c); err != nil {
		return err
	}
	return s.caseEvent(ctx, tx, p, c, "recovery.close", before)
}

func earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// passBinding is what a proof for a staff account's pass is bound to: the
// case (or user, for onboarding) and the pass's options as asked.
func passBinding(subject string, in api.IssuePass) proof.Binding {
	return proof.Binding{Action: proof.PassIssue, Subject: subject, Details: details("ttl", in.TTL, "uses", strconv.Itoa(in.Uses),
		"hardware_only", strconv.FormatBool(in.HardwareOnly), "attended", strconv.FormatBool(in.Attended))}
}
