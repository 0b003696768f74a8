package postgres

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/keyfleet/keyfleet/daemon/core"
	"github.com/keyfleet/keyfleet/daemon/store"
)

// The policy engine's records, and the policy facts index kept with the
// records it copies (policy_facts; the same binary records as Badger's
// pf/, sealed).

func versionKey(n int) string { return fmt.Sprintf("%010d", n) }

func (r *readTx) PolicyHead() (int, error) {
	b, err := r.getRaw(tSingletons, kPolicyHead, "policy", "current")
	if errors.Is(err, core.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(string(b))
	if err != nil {
		return 0, fmt.Errorf("policy head %q is damaged: %w", b, err)
	}
	return n, nil
}

func (r *readTx) PolicyVersion(n int) (core.PolicyVersion, error) {
	return get[core.PolicyVersion](r, tPolicyVers, versionKey(n), "policy version", strconv.Itoa(n))
}

func (r *readTx) PolicyVersions(pg core.PageReq) ([]core.PolicyVersion, string, error) {
	return list(r, tPolicyVers, where{}, pg, func(core.PolicyVersion) bool { return true })
}

func (r *readTx) PolicyDraft(approvalID string) (core.PolicyDraft, error) {
	return get[core.PolicyDraft](r, tPolicyDrafts, approvalID, "policy draft", approvalID)
}

func (r *readTx) FirstApplied(userID string) (map[string]time.Time, error) {
	m, err := get[map[string]time.Time](r, tFirstApplied, userID, "first-applied times", userID)
	if errors.Is(err, core.ErrNotFound) {
		return map[string]time.Time{}, nil
	}
	return m, err
}

func (r *readTx) Exemptions(userID string) ([]core.Exemption, error) {
	rows, err := r.q.Query(r.ctx, "SELECT k, rec FROM exemptions WHERE user_id = $1 ORDER BY k", userID)
	if err != nil {
		return nil, r.fail(err)
	}
	defer rows.Close()
	var out []core.Exemption
	for rows.Next() {
		var k string
		var sealed []byte
		if err := rows.Scan(&k, &sealed); err != nil {
			return nil, err
		}
		plain, err := r.s.box.open("exemptions", userID+"/"+k, sealed)
		if err != nil {
			return nil, err
		}
		var x core.Exemption
		if err := json.Unmarshal(plain, &x); err != nil {
			return nil, fmt.Errorf("decoding exemption %s: %w", k, err)
		}
		out = append(out, x)
	}
	return out, r.fail2(rows.Err())
}

func (t *tx) InsertPolicyVersion(v core.PolicyVersion) error {
	if err := t.insert(tPolicyVers, versionKey(v.Version), v, fmt.Sprintf("policy version %d", v.Version)); err != nil {
		return err
	}
	return t.putRaw(tSingletons, kPolicyHead, []byte(strconv.Itoa(v.Version)))
}

func (t *tx) PutPolicyDraft(d core.PolicyDraft) error { return t.put(tPolicyDrafts, d.ApprovalID, d) }

func (t *tx) DeletePolicyDraft(approvalID string) error { return t.del(tPolicyDrafts, approvalID) }

// PutFirstApplied writes the times and their copy in the policy facts.
func (t *tx) PutFirstApplied(userID string, m map[string]time.Time) error {
	if err := t.putFacts(userID, string(store.FactsFirstApplied), store.EncodeFirstApplied(m)); err != nil {
		return err
	}
	return t.put(tFirstApplied, userID, m)
}

// PutExemption writes the exemption and its copy in the policy facts.
func (t *tx) PutExemption(x core.Exemption) error {
	if err := t.putFacts(x.UserID, string(store.FactsExemption)+x.ID, store.EncodeExemption(x)); err != nil {
		return err
	}
	b, err := json.Marshal(x)
	if err != nil {
		return err
	}
	return t.exec(`INSERT INTO exemptions (user_id, k, rec) VALUES ($1, $2, $3)
		ON CONFLICT (user_id, k) DO UPDATE SET rec = EXCLUDED.rec`, x.UserID, x.ID, t.s.box.seal("exemptions", x.UserID+"/"+x.ID, b))
}

func (t *tx) DeletePolicyState(userID string) error {
	if err := t.exec("DELETE FROM exemptions WHERE user_id = $1", userID); err != nil {
		return err
	}
	if err := t.exec("DELETE FROM policy_facts WHERE user_id = $1 AND (sub = 'a' OR sub LIKE 'x%')", userID); err != nil {
		return err
	}
	return t.del(tFirstApplied, userID)
}
