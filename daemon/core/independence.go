package core

import (
	"fmt"
	"slices"
	"time"

	"github.com/keyfleet/keyfleet/api"
)

// The approver of a request must be a different person from the
// requester in fact, not only another account: an account one of them
// created, asked a role for, recovered, enrolled a factor for or issued a
// pass to may be in that person's hands. Each such act is noted on the
// account acted on (User.HandledBy), and for Config.IndependenceWindow
// after it (and from before the request on) the two may not decide each
// other's requests. docs/security.md ("A different person") says this in
// words.

// Ways of handling another's account.
const (
	handledCreated   = "created"
	handledGranted   = "granted"
	handledRecovered = "recovered"
	handledEnrolled  = "enrolled"
	handledPassed    = "passed"
)

// maxHandlings bounds the record on one account; the oldest go first.
const maxHandlings = 32

// person reports whether p is a person acting for themselves (not the
// daemon, a break-glass session, or the pages before sign-in).
func (p Principal) person() bool {
	return p.UserID != "" && !p.needsNoProof() && p.UserID != "anonymous" && p.Auth != "none" && isID(p.UserID, prefixUser)
}

// noteHandling records that p acted on u (what), unless p is u or not a
// person. The caller stores u.
func (s *Service) noteHandling(u *User, p Principal, what string) {
	if !p.person() || p.UserID == u.ID {
		return
	}
	now := s.now()
	u.HandledBy = slices.DeleteFunc(u.HandledBy, func(h Handling) bool { return h.By == p.UserID && h.What == what })
	u.HandledBy = append(u.HandledBy, Handling{By: p.UserID, What: what, At: now})
	if len(u.HandledBy) > maxHandlings {
		u.HandledBy = u.HandledBy[len(u.HandledBy)-maxHandlings:]
	}
}

// handleUser reads a user, notes p's handling and stores it.
func (s *Service) handleUser(tx Tx, userID string, p Principal, what string) error {
	if !p.person() || p.UserID == userID {
		return nil
	}
	u, err := tx.User(userID)
	if err != nil {
		return err
	}
	s.noteHandling(&u, p, what)
	return tx.PutUser(u)
}

// independent checks that approver and requester of a did not handle each
// other's accounts since the start of the window before the request.
// Errors: ErrNotIndependent (wrapped, with who did what and when).
func (s *Service) independent(approver, requester User, a Approval) error {
	since := a.RequestedAt.Add(-s.cfg.IndependenceWindow)
	check := func(acted, on User) error {
		for _, h := range on.HandledBy {
			if h.By == acted.ID && !h.At.Before(since) {
				return fmt.Errorf("%w: %s %s %s's account on %s, so %s cannot decide %s's request %s (accounts one of them made, asked a role for, recovered, "+
					"enrolled a factor for or issued a pass to are not independent for %s); another approver must decide it",
					ErrNotIndependent, acted.Username, handledWords[h.What], on.Username, h.At.Format(time.DateOnly),
					approver.Username, requester.Username, a.ID, s.cfg.IndependenceWindow)
			}
		}
		return nil
	}
	if err := check(requester, approver); err != nil {
		return err
	}
	return check(approver, requester)
}

var handledWords = map[string]string{
	handledCreated: "created", handledGranted: "asked a role for", handledRecovered: "recovered",
	handledEnrolled: "enrolled a factor for", handledPassed: "issued a pass to",
}

// approverUser loads the person deciding a request and checks they may:
// an active person (never a service account), independent of the
// requester. A requester who was disabled or deleted meanwhile makes the
// request void (errVoid).
func (s *Service) approverUser(tx ReadTx, p Principal, a Approval) error {
	if p.needsNoProof() {
		return nil
	}
	me, err := tx.User(p.UserID)
	if err != nil {
		return err
	}
	if me.Kind != api.KindPerson || me.Status != api.UserActive {
		return &ForbiddenError{Principal: p.Username, Action: DecideApprovals, Reason: "only an active person decides requests, never a service account"}
	}
	if handled, err := machineRequest(tx, p, a); handled || err != nil {
		return err
	}
	if a.RequestedBy.ID == System.UserID || a.RequestedBy.Auth == "breakglass" {
		return nil
	}
	req, err := tx.User(a.RequestedBy.ID)
	if isNotFound(err) || (err == nil && req.Status != api.UserActive) {
		return errVoid
	}
	if err != nil {
		return err
	}
	return s.independent(me, req, a)
}
