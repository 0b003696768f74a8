package postgres

import (
	"fmt"

	"github.com/keyfleet/keyfleet/daemon/core"
	"github.com/keyfleet/keyfleet/daemon/store"
)

// The policy facts index: one row per record, (user id, sub) ordered so
// that a user's own record ('') comes first, then their first-applied
// times ('a'), factors ('f'‖id) and exemptions ('x'‖id).

func factorSub(id string) string { return string(store.FactsFactor) + id }

func factsKey(userID, sub string) string { return userID + "/" + sub }

// tFacts names policy facts rows for the group commit (group.go).
var tFacts = &table{name: "policy_facts"}

func (t *tx) putFacts(userID, sub string, rec []byte) error {
	return t.execRow(rowKey{tFacts, factsKey(userID, sub)}, `INSERT INTO policy_facts (user_id, sub, rec) VALUES ($1, $2, $3)
		ON CONFLICT (user_id, sub) DO UPDATE SET rec = EXCLUDED.rec`,
		userID, sub, t.s.box.seal("policy_facts", factsKey(userID, sub), rec))
}

func (t *tx) deleteFacts(userID, sub string) error {
	return t.execRow(rowKey{tFacts, factsKey(userID, sub)}, "DELETE FROM policy_facts WHERE user_id = $1 AND sub = $2", userID, sub)
}

func (t *tx) putUserFacts(u core.User) error { return t.putFacts(u.ID, "", store.EncodeUserFacts(u)) }

func (t *tx) putFactorFacts(f core.Factor) error {
	return t.putFacts(f.UserID, factorSub(f.ID), store.EncodeFactorFacts(f))
}

// factsBatch is how many rows ScanPolicyFacts reads per query.
const factsBatch = 8192

// ScanPolicyFacts reads the index in user id order, opening each record
// and handing each user's records, undecoded, to fn: Facts decodes them
// on whichever goroutine calls it. Records of a user whose own record is
// missing are skipped, as Badger's scan does. In a snapshot (View) the
// rows stream from a second connection that shares the snapshot
// (scan.go); in a read-write transaction they are read in batches, so
// that fn may read in the same transaction between them.
func (r *readTx) ScanPolicyFacts(after string, fn func(core.PolicyFactsRecord) error) error {
	if r.track == nil {
		if done, err := r.streamPolicyFacts(after, fn); done {
			return err
		}
	}
	sc := &factsScan{r: r, fn: fn}
	lastUser, lastSub := after, "\uffff" // past every record of after
	for {
		rows, err := r.scanBatch(lastUser, lastSub)
		if err != nil {
			return err
		}
		for _, x := range rows {
			if err := sc.add(x); err != nil {
				return err
			}
			lastUser, lastSub = x.user, x.sub
		}
		if len(rows) < factsBatch {
			return sc.flush()
		}
	}
}

type factsRow struct {
	user, sub string
	rec       []byte
}

func (r *readTx) scanBatch(afterUser, afterSub string) ([]factsRow, error) {
	rows, err := r.q.Query(r.ctx, `SELECT user_id, sub, rec FROM policy_facts
		WHERE (user_id, sub) > ($1, $2) ORDER BY user_id, sub LIMIT $3`, afterUser, afterSub, factsBatch)
	if err != nil {
		return nil, r.fail(err)
	}
	defer rows.Close()
	out := make([]factsRow, 0, factsBatch)
	for rows.Next() {
		var x factsRow
		var sealed []byte
		if err := rows.Scan(&x.user, &x.sub, &sealed); err != nil {
			return nil, err
		}
		if x.rec, err = r.s.box.open("policy_facts", factsKey(x.user, x.sub), sealed); err != nil {
			return nil, err
		}
		out = append(out, x)
	}
	return out, r.fail2(rows.Err())
}

// factsScan groups rows into users' bundles.
type factsScan struct {
	r   *readTx
	fn  func(core.PolicyFactsRecord) error
	cur *store.FactsBundle
	uid string
}

func (sc *factsScan) add(x factsRow) error {
	if x.sub == "" {
		if err := sc.flush(); err != nil {
			return err
		}
		sc.cur, sc.uid = store.NewFactsBundle(x.user, x.rec), x.user
		return nil
	}
	if sc.cur == nil || x.user != sc.uid {
		return nil // no record of the user's own
	}
	sc.cur.Add(x.sub[0], x.sub[1:], x.rec)
	return nil
}

func (sc *factsScan) flush() error {
	if sc.cur == nil {
		return nil
	}
	b := sc.cur
	sc.cur = nil
	return sc.fn(b)
}

// UserPolicyFacts reads one user's records of the index.
func (r *readTx) UserPolicyFacts(userID string) (core.PolicyFacts, error) {
	rows, err := r.q.Query(r.ctx, "SELECT sub, rec FROM policy_facts WHERE user_id = $1 ORDER BY sub", userID)
	if err != nil {
		return core.PolicyFacts{}, r.fail(err)
	}
	var all []factsRow
	for rows.Next() {
		x := factsRow{user: userID}
		var sealed []byte
		if err := rows.Scan(&x.sub, &sealed); err != nil {
			rows.Close()
			return core.PolicyFacts{}, err
		}
		if x.rec, err = r.s.box.open("policy_facts", factsKey(userID, x.sub), sealed); err != nil {
			rows.Close()
			return core.PolicyFacts{}, err
		}
		all = append(all, x)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return core.PolicyFacts{}, r.fail(err)
	}
	if len(all) == 0 || all[0].sub != "" {
		return core.PolicyFacts{}, &core.NotFoundError{Kind: "policy facts of user", Ref: userID}
	}
	var out core.PolicyFactsRecord
	sc := &factsScan{r: r, fn: func(rec core.PolicyFactsRecord) error { out = rec; return nil }}
	for _, x := range all {
		sc.add(x)
	}
	if err := sc.flush(); err != nil {
		return core.PolicyFacts{}, err
	}
	f, err := out.Facts()
	if err != nil {
		return f, fmt.Errorf("policy facts of user %s: %w", userID, err)
	}
	return f, nil
}
