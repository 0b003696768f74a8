package store

import (
	"bytes"
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
	m, err := get[map[string]time.Time](r.txn, key(pFirstApplied, userID), "first-applied times", userID)
	if errors.Is(err, core.ErrNotFound) {
		return map[string]time.Time{}, nil
	}
	return m, err
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

// PolicySubjects reads a page of users and, for them all at once, their
// factor index entries and exemptions in one ordered pass each: users,
// the fu/ index and the x/ records all sort by user id.
func (r *readTx) PolicySubjects(pg core.PageReq) ([]core.PolicySubject, string, error) {
	users, next, err := r.userPage(pg)
	if err != nil || len(users) == 0 {
		return nil, next, err
	}
	first, last := users[0].ID, users[len(users)-1].ID
	factorIDs, err := r.idsByUser(pUserFactor, first, last)
	if err != nil {
		return nil, "", err
	}
	exemptions, err := r.exemptionsBetween(first, last)
	if err != nil {
		return nil, "", err
	}
	out := make([]core.PolicySubject, len(users))
	for i, u := range users {
		s := core.PolicySubject{User: u, Exemptions: exemptions[u.ID]}
		for _, id := range factorIDs[u.ID] {
			f, err := r.Factor(id)
			if err != nil {
				return nil, "", err
			}
			s.Factors = append(s.Factors, f)
		}
		if s.FirstApplied, err = r.FirstApplied(u.ID); err != nil {
			return nil, "", err
		}
		out[i] = s
	}
	return out, next, nil
}

// userPage reads up to pg.Limit user records in id order after pg.After.
func (r *readTx) userPage(pg core.PageReq) ([]core.User, string, error) {
	opts := badger.DefaultIteratorOptions
	opts.Prefix = []byte(pUser)
	it := r.txn.NewIterator(opts)
	defer it.Close()
	start := []byte(pUser)
	if pg.After != "" {
		start = key(pUser, pg.After, "\x00")
	}
	var out []core.User
	for it.Seek(start); it.Valid(); it.Next() {
		if len(out) == pg.Limit {
			return out, out[len(out)-1].ID, nil
		}
		var u core.User
		if err := it.Item().Value(func(b []byte) error { return json.Unmarshal(b, &u) }); err != nil {
			return nil, "", fmt.Errorf("decoding user %s: %w", it.Item().Key(), err)
		}
		out = append(out, u)
	}
	return out, "", nil
}

// idsByUser walks an index prefix/<user id>/<id> from the first user to
// the last and groups the ids by user.
func (r *readTx) idsByUser(prefix, first, last string) (map[string][]string, error) {
	out := map[string][]string{}
	opts := badger.DefaultIteratorOptions
	opts.Prefix, opts.PrefetchValues = []byte(prefix), false
	it := r.txn.NewIterator(opts)
	defer it.Close()
	end := key(prefix, last, "/\xff")
	for it.Seek(key(prefix, first, "/")); it.Valid(); it.Next() {
		k := it.Item().Key()
		if bytes.Compare(k, end) > 0 {
			break
		}
		user, id, ok := bytes.Cut(k[len(prefix):], []byte("/"))
		if ok {
			out[string(user)] = append(out[string(user)], string(id))
		}
	}
	return out, nil
}

func (r *readTx) exemptionsBetween(first, last string) (map[string][]core.Exemption, error) {
	out := map[string][]core.Exemption{}
	opts := badger.DefaultIteratorOptions
	opts.Prefix = []byte(pExemption)
	it := r.txn.NewIterator(opts)
	defer it.Close()
	end := key(pExemption, last, "/\xff")
	for it.Seek(key(pExemption, first, "/")); it.Valid() && bytes.Compare(it.Item().Key(), end) <= 0; it.Next() {
		var x core.Exemption
		if err := it.Item().Value(func(b []byte) error { return json.Unmarshal(b, &x) }); err != nil {
			return nil, fmt.Errorf("decoding exemption %s: %w", it.Item().Key(), err)
		}
		out[x.UserID] = append(out[x.UserID], x)
	}
	return out, nil
}

func (t *tx) InsertPolicyVersion(v core.PolicyVersion) error {
	ok, err := exists(t.txn, policyVersionKey(v.Version))
	if err != nil {
		return err
	}
	if ok {
		return fmt.Errorf("%w: policy version %d", core.ErrAlreadyExists, v.Version)
	}
	if err := put(t.txn, policyVersionKey(v.Version), v); err != nil {
		return err
	}
	return t.txn.Set([]byte(kPolicyHead), []byte(strconv.Itoa(v.Version)))
}

func (t *tx) PutPolicyDraft(d core.PolicyDraft) error {
	return put(t.txn, key(pPolicyDraft, d.ApprovalID), d)
}

func (t *tx) DeletePolicyDraft(approvalID string) error {
	return t.txn.Delete(key(pPolicyDraft, approvalID))
}

func (t *tx) PutFirstApplied(userID string, m map[string]time.Time) error {
	return put(t.txn, key(pFirstApplied, userID), m)
}

func (t *tx) PutExemption(x core.Exemption) error {
	return put(t.txn, exemptionKey(x.UserID, x.ID), x)
}

func (t *tx) DeletePolicyState(userID string) error {
	xs, err := t.Exemptions(userID)
	if err != nil {
		return err
	}
	for _, x := range xs {
		if err := t.txn.Delete(exemptionKey(userID, x.ID)); err != nil {
			return err
		}
	}
	return t.txn.Delete(key(pFirstApplied, userID))
}
