package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/keyfleet/keyfleet/daemon/core"
)

// The policy engine's records; keys.go lists their layout.

func policyVersionKey(n int) []byte { return []byte(fmt.Sprintf("%s%010d", pPolicyVersion, n)) }

func exemptionKey(userID, id string) []byte { return key(pExemption, userID, "/", id) }

func (r *readTx) PolicyHead() (int, error) {
	s, err := getString(r.txn, []byte(kPolicyHead), "policy", "current")
	if errors.Is(err, core.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("policy head %q is damaged: %w", s, err)
	}
	return n, nil
}

func (r *readTx) PolicyVersion(n int) (core.PolicyVersion, error) {
	return get[core.PolicyVersion](r.txn, policyVersionKey(n), "policy version", strconv.Itoa(n))
}

func (r *readTx) PolicyVersions(pg core.PageReq) ([]core.PolicyVersion, string, error) {
	match := func(core.PolicyVersion) bool { return true }
	return list(r.txn, []byte(pPolicyVersion), pg, loadValue[core.PolicyVersion](pPolicyVersion), match)
}

func (r *readTx) PolicyDraft(approvalID string) (core.PolicyDraft, error) {
	return get[core.PolicyDraft](r.txn, key(pPolicyDraft, approvalID), "policy draft", approvalID)
}

func (r *readTx) FirstApplied(userID string) (map[string]time.Time, error) {
	item, err := r.txn.Get(factsSubKey(userID, tagFirstApplied, ""))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return map[string]time.Time{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading first-applied times %s: %w", userID, err)
	}
	var m map[string]time.Time
	err = item.Value(func(b []byte) error {
		m, err = decodeFirstApplied(b)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("decoding first-applied times %s: %w", userID, err)
	}
	return m, nil
}

func (r *readTx) Exemptions(userID string) ([]core.Exemption, error) {
	var out []core.Exemption
	err := scanPrefix(r.txn, key(pExemption, userID, "/"), true, func(item *badger.Item) error {
		var x core.Exemption
		if err := item.Value(func(b []byte) error { return json.Unmarshal(b, &x) }); err != nil {
			return fmt.Errorf("decoding exemption %s: %w", item.Key(), err)
		}
		out = append(out, x)
		return nil
	})
	return out, err
}

// scanPrefix calls fn for every key under prefix, in order. It closes its
// iterator before returning, so it is safe in a read-write transaction
// (which allows one iterator at a time).
func scanPrefix(txn *badger.Txn, prefix []byte, values bool, fn func(*badger.Item) error) error {
	opts := badger.DefaultIteratorOptions
	opts.Prefix, opts.PrefetchValues = prefix, values
	it := txn.NewIterator(opts)
	defer it.Close()
	for it.Seek(prefix); it.Valid(); it.Next() {
		if err := fn(it.Item()); err != nil {
			return err
		}
	}
	return nil
}

func (t *tx) InsertPolicyVersion(v core.PolicyVersion) error {
	ok, err := exists(t.txn, policyVersionKey(v.Version))
	if err != nil {
		return err
	}
	if ok {
		return fmt.Errorf("%w: policy version %d", core.ErrAlreadyExists, v.Version)
	}
	if err := put(t.w, policyVersionKey(v.Version), v); err != nil {
		return err
	}
	return t.w.Set([]byte(kPolicyHead), []byte(strconv.Itoa(v.Version)))
}

func (t *tx) PutPolicyDraft(d core.PolicyDraft) error {
	return put(t.w, key(pPolicyDraft, d.ApprovalID), d)
}

func (t *tx) DeletePolicyDraft(approvalID string) error {
	return t.w.Delete(key(pPolicyDraft, approvalID))
}

// PutFirstApplied writes the times in the policy facts, their only record
// (schema 5; fa/ before).
func (t *tx) PutFirstApplied(userID string, m map[string]time.Time) error {
	return putFirstAppliedRecords(t.w, userID, m)
}

func putFirstAppliedRecords(s setter, userID string, m map[string]time.Time) error {
	return s.Set(factsSubKey(userID, tagFirstApplied, ""), encodeFirstApplied(m))
}

// PutExemption writes the exemption and its copy in the policy facts.
func (t *tx) PutExemption(x core.Exemption) error {
	if err := t.w.Set(factsSubKey(x.UserID, tagExemption, x.ID), encodeExemption(x.Reason, x.Until)); err != nil {
		return err
	}
	return put(t.w, exemptionKey(x.UserID, x.ID), x)
}

func (t *tx) DeletePolicyState(userID string) error {
	xs, err := t.Exemptions(userID)
	if err != nil {
		return err
	}
	for _, x := range xs {
		if err := t.w.Delete(exemptionKey(userID, x.ID)); err != nil {
			return err
		}
		if err := t.w.Delete(factsSubKey(userID, tagExemption, x.ID)); err != nil {
			return err
		}
	}
	return t.w.Delete(factsSubKey(userID, tagFirstApplied, ""))
}
