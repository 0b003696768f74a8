package postgres

import (
	"github.com/keyfleet/keyfleet/daemon/core"
)

func (r *readTx) RecoveryCodes(userID string) (core.RecoveryCodes, error) {
	return get[core.RecoveryCodes](r, tRecCodes, userID, "recovery codes of user", userID)
}

func (r *readTx) RecoveryCase(id string) (core.RecoveryCase, error) {
	return get[core.RecoveryCase](r, tRecCases, id, "recovery case", id)
}

func (r *readTx) RecoveryCases(f core.RecoveryFilter, pg core.PageReq) ([]core.RecoveryCase, string, error) {
	w := where{}
	w.eq("user_id", f.UserID)
	w.eq("state", f.State)
	return list(r, tRecCases, w, pg, f.Match)
}

func (r *readTx) AccessPass(id string) (core.AccessPass, error) {
	return get[core.AccessPass](r, tPasses, id, "access pass", id)
}

// AccessPassByHash finds the pass last written with that code hash.
func (r *readTx) AccessPassByHash(hash []byte) (core.AccessPass, error) {
	var id string
	err := r.q.QueryRow(r.ctx, "SELECT k FROM access_passes WHERE code_hash = $1 ORDER BY xmin::text::bigint DESC LIMIT 1", hash).Scan(&id)
	if err != nil {
		if isNoRows(err) {
			return core.AccessPass{}, &core.NotFoundError{Kind: "access pass", Ref: "with that code"}
		}
		return core.AccessPass{}, r.fail(err)
	}
	return r.AccessPass(id)
}

func (r *readTx) BreakGlass() (core.BreakGlass, error) {
	return get[core.BreakGlass](r, tSingletons, kBreakGlass, "break-glass credential", "current")
}

// EachRecoveryCodes reads every set, then calls fn for each in user id
// order (fn may read in the same transaction).
func (r *readTx) EachRecoveryCodes(fn func(core.RecoveryCodes) error) error {
	rows, err := r.q.Query(r.ctx, "SELECT k, rec FROM recovery_codes ORDER BY k")
	if err != nil {
		return r.fail(err)
	}
	var all []core.RecoveryCodes
	for rows.Next() {
		var k string
		var sealed []byte
		if err := rows.Scan(&k, &sealed); err != nil {
			rows.Close()
			return err
		}
		rc, err := decode[core.RecoveryCodes](r.s.box, tRecCodes, k, sealed, "recovery codes")
		if err != nil {
			rows.Close()
			return err
		}
		all = append(all, rc)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return r.fail(err)
	}
	for _, rc := range all {
		if err := fn(rc); err != nil {
			return err
		}
	}
	return nil
}

func (t *tx) PutRecoveryCodes(rc core.RecoveryCodes) error { return t.put(tRecCodes, rc.UserID, rc) }

func (t *tx) PutRecoveryCase(c core.RecoveryCase) error {
	return t.put(tRecCases, c.ID, c, c.UserID, c.State)
}

func (t *tx) PutAccessPass(p core.AccessPass) error { return t.put(tPasses, p.ID, p, p.Hash) }

func (t *tx) PutBreakGlass(b core.BreakGlass) error { return t.put(tSingletons, kBreakGlass, b) }
