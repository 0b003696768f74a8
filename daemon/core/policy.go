package core

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/policy"
)

// The policy engine's side of the daemon: versioned documents in the
// store, two-person approval of weakening changes, exemptions, the
// first-applied times deadlines count from, and enforcement at enrolment,
// verification and removal. Package policy decides; this file and
// policy_*.go keep its records. See docs/policy.md, "The daemon".

// ErrPolicyViolation: the policy refuses the action (a key that fails a
// requirement, a kind the user may not sign in with, the last active
// factor). The error wraps a *policy.RequirementError or
// *policy.RemovalError with the reasons.
var ErrPolicyViolation = errors.New("refused by the policy")

// PolicyVersion is one applied policy document, kept for ever.
type PolicyVersion struct {
	Version    int        `json:"version"`
	Document   string     `json:"document"`
	SHA256     string     `json:"sha256"`
	AppliedBy  api.Actor  `json:"applied_by"`
	ApprovedBy *api.Actor `json:"approved_by,omitempty"`
	ApprovalID string     `json:"approval_id,omitempty"`
	AppliedAt  time.Time  `json:"applied_at"`
	Comment    string     `json:"comment,omitempty"`
	RollbackOf int        `json:"rollback_of,omitempty"`
}

// PolicyDraft is a weakening document waiting for its approval.
type PolicyDraft struct {
	ApprovalID  string `json:"approval_id"`
	Document    string `json:"document"`
	SHA256      string `json:"sha256"`
	BaseVersion int    `json:"base_version"`
	RollbackOf  int    `json:"rollback_of,omitempty"`
	Comment     string `json:"comment,omitempty"`
}

// Exemption excuses a user from the policy until a time. It exists only
// once a second person approved it; its ID is the approval's.
type Exemption struct {
	ID          string     `json:"id"`
	UserID      string     `json:"user_id"`
	Reason      string     `json:"reason"`
	Until       time.Time  `json:"until"`
	RequestedBy api.Actor  `json:"requested_by"`
	ApprovedBy  *api.Actor `json:"approved_by,omitempty"`
	CreatedAt   time.Time  `json:"created_at"`
}

// PolicySubject is one user with everything evaluation needs.
type PolicySubject struct {
	User         User
	Factors      []Factor // every state
	FirstApplied map[string]time.Time
	Exemptions   []Exemption
}

// PolicyReadTx reads the policy engine's records.
type PolicyReadTx interface {
	// PolicyHead is the current policy version; 0 when none was applied.
	PolicyHead() (int, error)
	PolicyVersion(n int) (PolicyVersion, error)
	// PolicyVersions lists versions, oldest first.
	PolicyVersions(p PageReq) ([]PolicyVersion, string, error)
	PolicyDraft(approvalID string) (PolicyDraft, error)
	// FirstApplied maps rule names to when each first applied to the
	// user; empty (not an error) when none has.
	FirstApplied(userID string) (map[string]time.Time, error)
	// Exemptions lists a user's approved exemptions, expired ones too.
	Exemptions(userID string) ([]Exemption, error)
	// ScanPolicyFacts calls fn with every user whose id sorts after
	// after ("" for all), in id order, with their policy facts as stored,
	// until fn returns an error, which it returns. fn owns what it is
	// given. The store keeps the facts with the records they come from,
	// in the same transactions (see policy_facts.go).
	ScanPolicyFacts(after string, fn func(PolicyFactsRecord) error) error
	// UserPolicyFacts reads one user's policy facts; *NotFoundError when
	// the user has none.
	UserPolicyFacts(userID string) (PolicyFacts, error)
}

// PolicyTx writes them.
type PolicyTx interface {
	// InsertPolicyVersion adds a version and makes it current;
	// ErrAlreadyExists if the number is taken.
	InsertPolicyVersion(v PolicyVersion) error
	PutPolicyDraft(d PolicyDraft) error
	DeletePolicyDraft(approvalID string) error
	PutFirstApplied(userID string, m map[string]time.Time) error
	PutExemption(x Exemption) error
	// DeletePolicyState forgets a deleted user's first-applied times and
	// exemptions.
	DeletePolicyState(userID string) error
}

// policyCache keeps the parsed current document: parsing costs about a
// millisecond, and every enrolment, verification and status needs it.
// Versions never change, so the number is the cache key.
type policyCache struct {
	mu      sync.Mutex
	version int
	doc     *policy.Document
}

// currentPolicy returns the current version and its parsed document (nil
// when no document was applied).
func (s *Service) currentPolicy(tx ReadTx) (int, *policy.Document, error) {
	n, err := tx.PolicyHead()
	if err != nil || n == 0 {
		return 0, nil, err
	}
	doc, err := s.policyAt(tx, n)
	return n, doc, err
}

// policyAt returns version n parsed; nil for version 0.
func (s *Service) policyAt(tx ReadTx, n int) (*policy.Document, error) {
	if n == 0 {
		return nil, nil
	}
	c := &s.policies
	c.mu.Lock()
	if c.version == n {
		doc := c.doc
		c.mu.Unlock()
		return doc, nil
	}
	c.mu.Unlock()
	v, err := tx.PolicyVersion(n)
	if err != nil {
		return nil, err
	}
	doc, err := policy.Parse(versionName(n), []byte(v.Document))
	if err != nil {
		return nil, fmt.Errorf("stored policy version %d does not parse (was it written by a newer keyfleetd?): %v", n, err)
	}
	c.mu.Lock()
	if n >= c.version {
		c.version, c.doc = n, doc
	}
	c.mu.Unlock()
	return doc, nil
}

func versionName(n int) string { return fmt.Sprintf("policy version %d", n) }

// parseDocument validates a submitted document. Errors wrap ErrInvalid and
// the *policy.ParseError listing every problem with its line.
func parseDocument(raw string) (*policy.Document, error) {
	if strings.TrimSpace(raw) == "" {
		return nil, invalid("document", "is empty; send the policy YAML (docs/policy.md has an example)")
	}
	doc, err := policy.Parse("policy.yaml", []byte(raw))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return doc, nil
}

func hashDocument(raw string) string {
	h := sha256.Sum256([]byte(raw))
	return hex.EncodeToString(h[:])
}

// policyTarget is what policy audit events are about: one target for the
// whole history, so GET /v1/audit?target=policy lists it.
func policyTarget(version int) targetRef {
	return targetRef{"policy", "policy", "version " + strconv.Itoa(version)}
}

// API is the version's wire form; withDoc includes the YAML.
func (v PolicyVersion) API(withDoc bool) api.PolicyVersion {
	out := api.PolicyVersion{Version: v.Version, SHA256: v.SHA256, Size: len(v.Document), AppliedBy: v.AppliedBy,
		ApprovedBy: v.ApprovedBy, ApprovalID: v.ApprovalID, AppliedAt: v.AppliedAt, Comment: v.Comment, RollbackOf: v.RollbackOf}
	if doc, err := policy.Parse(versionName(v.Version), []byte(v.Document)); err == nil {
		out.Rules, out.Description = len(doc.Rules), doc.Description
	}
	if withDoc {
		out.Document = v.Document
	}
	return out
}

// CurrentPolicy returns the current version (zero Version when none).
func (s *Service) CurrentPolicy(ctx context.Context, p Principal) (PolicyVersion, error) {
	if err := p.authorize(ReadPolicy, ""); err != nil {
		return PolicyVersion{}, err
	}
	var v PolicyVersion
	err := s.store.View(ctx, func(tx ReadTx) error {
		n, err := tx.PolicyHead()
		if err != nil || n == 0 {
			return err
		}
		v, err = tx.PolicyVersion(n)
		return err
	})
	return v, err
}

// GetPolicyVersion returns one version. Errors: ErrNotFound.
func (s *Service) GetPolicyVersion(ctx context.Context, p Principal, n int) (PolicyVersion, error) {
	if err := p.authorize(ReadPolicy, ""); err != nil {
		return PolicyVersion{}, err
	}
	var v PolicyVersion
	err := s.store.View(ctx, func(tx ReadTx) error {
		var err error
		v, err = tx.PolicyVersion(n)
		return err
	})
	return v, err
}

// ListPolicyVersions lists every version, oldest first.
func (s *Service) ListPolicyVersions(ctx context.Context, p Principal, pg PageReq) ([]PolicyVersion, string, error) {
	if err := p.authorize(ReadPolicy, ""); err != nil {
		return nil, "", err
	}
	var out []PolicyVersion
	var next string
	err := s.store.View(ctx, func(tx ReadTx) error {
		var err error
		out, next, err = tx.PolicyVersions(pg.Clamp())
		return err
	})
	return out, next, err
}

// DiffPolicy compares two versions requirement by requirement. to 0 means
// the current version; from -1 means the one before to. Version 0 is the
// empty document.
func (s *Service) DiffPolicy(ctx context.Context, p Principal, from, to int) (api.PolicyDiff, error) {
	if err := p.authorize(ReadPolicy, ""); err != nil {
		return api.PolicyDiff{}, err
	}
	var out api.PolicyDiff
	err := s.store.View(ctx, func(tx ReadTx) error {
		head, err := tx.PolicyHead()
		if err != nil {
			return err
		}
		if to == 0 {
			to = head
		}
		if from < 0 {
			from = max(to-1, 0)
		}
		if from > head || to > head || from < 0 || to < 0 {
			return invalid("from", "versions go from 0 (no document) to %d; asked for %d..%d", head, from, to)
		}
		a, err := s.policyAt(tx, from)
		if err != nil {
			return err
		}
		b, err := s.policyAt(tx, to)
		if err != nil {
			return err
		}
		out = api.PolicyDiff{From: from, To: to, Weakens: policy.Weakens(a, b), Changes: apiChanges(policy.Diff(a, b))}
		return nil
	})
	return out, err
}

func apiChanges(cs []policy.Change) []api.PolicyChange {
	out := make([]api.PolicyChange, len(cs))
	for i, c := range cs {
		out[i] = api.PolicyChange{Rule: c.Rule, Field: c.Field, Effect: string(c.Effect), Old: c.Old, New: c.New, Message: c.Message}
	}
	return out
}

// diffSummary is what audit events say about a change: counts and the
// first few messages, never the whole document.
func diffSummary(cs []policy.Change) (weaker, stricter int, text string) {
	var msgs []string
	for _, c := range cs {
		if c.Effect == policy.Weaker {
			weaker++
		} else {
			stricter++
		}
		if len(msgs) < 10 {
			msgs = append(msgs, string(c.Effect)+": "+c.Message)
		}
	}
	if len(cs) > len(msgs) {
		msgs = append(msgs, fmt.Sprintf("and %d more", len(cs)-len(msgs)))
	}
	text = strings.Join(msgs, "; ")
	if len(text) > 2000 {
		text = text[:2000] + "…"
	}
	return weaker, stricter, text
}
