package core

import (
	"slices"
	"time"

	"github.com/keyfleet/keyfleet/attest"
	"github.com/keyfleet/keyfleet/policy"
)

// Policy facts are the few fields of users and factors that the policy
// reads. The store keeps them beside the full records, written in the same
// transaction (daemon/store/facts.go), so that evaluating every user reads
// a few hundred bytes per user instead of decoding each factor's record
// and its attestation chain. Every evaluation, one user's or everyone's,
// goes through them, so both paths decide alike.

// UserFacts is what the policy reads about a user.
type UserFacts struct {
	ID        string
	Username  string
	Kind      string
	Groups    []string
	Roles     []string
	CreatedAt time.Time
}

// UserFactsOf returns the policy's view of u.
func UserFactsOf(u User) UserFacts {
	return UserFacts{ID: u.ID, Username: u.Username, Kind: u.Kind, Groups: u.Groups, Roles: u.Roles, CreatedAt: u.CreatedAt}
}

// FactorFacts is what the policy reads about a factor. Whether its kind
// is hardware is not kept: the kind says so (sdk.Info.Hardware) when the
// factor is evaluated.
type FactorFacts struct {
	ID          string
	Kind        string
	State       string
	CreatedAt   time.Time
	ActivatedAt *time.Time
	LastUsedAt  *time.Time
	// Evidence holds only the fields the policy reads (see
	// policyEvidence); nil when the factor kept no attest.Evidence.
	Evidence *attest.Evidence
	// Params are a TOTP factor's algorithm, digits and period (see
	// factorParams); nil for other kinds.
	Params map[string]string
}

// FactsOf returns the policy's view of f, decoding its evidence once.
func FactsOf(f Factor) FactorFacts {
	return FactorFacts{ID: f.ID, Kind: f.Kind, State: f.State, CreatedAt: f.CreatedAt, ActivatedAt: f.ActivatedAt,
		LastUsedAt: f.LastUsedAt, Evidence: policyEvidence(decodeEvidence(f.Evidence)), Params: factorParams(f.Kind, f.Public)}
}

// policyEvidence keeps the evidence fields package policy reads: no
// chain, keys, credential id, flags or counter.
func policyEvidence(ev *attest.Evidence) *attest.Evidence {
	if ev == nil {
		return nil
	}
	return &attest.Evidence{Format: ev.Format, Vendor: ev.Vendor, Model: ev.Model, Serial: ev.Serial,
		Firmware: ev.Firmware, FormFactor: ev.FormFactor, FIPS: ev.FIPS, PINPolicy: ev.PINPolicy,
		TouchPolicy: ev.TouchPolicy, KeyAlgorithm: ev.KeyAlgorithm, AAGUID: ev.AAGUID,
		AAGUIDAttested: ev.AAGUIDAttested, AttestationType: ev.AttestationType, Advisories: slices.Clip(ev.Advisories)}
}

// PolicyFacts is one user with everything bulk evaluation reads: their
// facts, their factors' (every state), first-applied times and
// exemptions. It is read-only: a scan may hand the same groups, roles
// and first-applied map to many users.
type PolicyFacts struct {
	User         UserFacts
	Factors      []FactorFacts
	FirstApplied map[string]time.Time
	Exemptions   []policy.Exemption
}

// PolicyFactsRecord is one user's policy facts as the store keeps them.
// Facts decodes them; it may run on any goroutine, while the scan that
// produced the record goes on.
type PolicyFactsRecord interface {
	Facts() (PolicyFacts, error)
	// UserID is the user's id, known without decoding: a scan that
	// stops goes on after it.
	UserID() string
}

func policyUserOf(u UserFacts) policy.User {
	return policy.User{ID: u.ID, Username: u.Username, Groups: u.Groups, Roles: u.Roles, Kind: u.Kind, CreatedAt: u.CreatedAt}
}

// policyFactorOf maps a factor's facts, with Hardware from its kind.
func (s *Service) policyFactorOf(f FactorFacts) policy.Factor {
	return policy.Factor{ID: f.ID, Kind: f.Kind, State: f.State, CreatedAt: f.CreatedAt, ActivatedAt: f.ActivatedAt,
		LastUsedAt: f.LastUsedAt, Evidence: f.Evidence, Hardware: s.kinds[f.Kind].info.Hardware, Params: f.Params}
}

// decideFacts evaluates one user's policy facts against doc at now,
// leaving out the factor without (none when empty).
func (s *Service) decideFacts(doc *policy.Document, facts PolicyFacts, without string, now time.Time) policy.Decision {
	factors := make([]policy.Factor, 0, len(facts.Factors))
	for _, f := range facts.Factors {
		if f.ID != without {
			factors = append(factors, s.policyFactorOf(f))
		}
	}
	return policy.Evaluate(doc, policyUserOf(facts.User), factors, facts.FirstApplied, facts.Exemptions, now)
}
