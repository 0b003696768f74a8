package store

import (
	"encoding/hex"
	"encoding/json"

	"github.com/dgraph-io/badger/v4"

	"github.com/keyfleet/keyfleet/daemon/core"
)

func (r *readTx) RecoveryCodes(userID string) (core.RecoveryCodes, error) {
	return get[core.RecoveryCodes](r.txn, key(pRecCodes, userID), "recovery codes of user", userID)
}

func (r *readTx) RecoveryCase(id string) (core.RecoveryCase, error) {
	return get[core.RecoveryCase](r.txn, key(pRecCase, id), "recovery case", id)
}

func (r *readTx) RecoveryCases(f core.RecoveryFilter, pg core.PageReq) ([]core.RecoveryCase, string, error) {
	return list(r.txn, []byte(pRecCase), pg, loadValue[core.RecoveryCase](pRecCase), f.Match)
}

func (r *readTx) AccessPass(id string) (core.AccessPass, error) {
	return get[core.AccessPass](r.txn, key(pPass, id), "access pass", id)
}

func (r *readTx) AccessPassByHash(hash []byte) (core.AccessPass, error) {
	id, err := getString(r.txn, key(pPassHash, hex.EncodeToString(hash)), "access pass", "with that code")
	if err != nil {
		return core.AccessPass{}, err
	}
	return r.AccessPass(id)
}

func (r *readTx) BreakGlass() (core.BreakGlass, error) {
	return get[core.BreakGlass](r.txn, []byte(kBreakGlass), "break-glass credential", "current")
}

func (t *tx) PutRecoveryCodes(rc core.RecoveryCodes) error {
	return put(t.w, key(pRecCodes, rc.UserID), rc)
}

func (t *tx) PutRecoveryCase(c core.RecoveryCase) error { return put(t.w, key(pRecCase, c.ID), c) }

func (t *tx) PutAccessPass(p core.AccessPass) error {
	if err := t.w.Set(key(pPassHash, hex.EncodeToString(p.Hash)), []byte(p.ID)); err != nil {
		return err
	}
	return put(t.w, key(pPass, p.ID), p)
}

func (t *tx) PutBreakGlass(b core.BreakGlass) error { return put(t.w, []byte(kBreakGlass), b) }

func (r *readTx) EachRecoveryCodes(fn func(core.RecoveryCodes) error) error {
	opts := badger.DefaultIteratorOptions
	opts.Prefix = []byte(pRecCodes)
	it := r.txn.NewIterator(opts)
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		var rc core.RecoveryCodes
		if err := it.Item().Value(func(v []byte) error { return json.Unmarshal(v, &rc) }); err != nil {
			return err
		}
		if err := fn(rc); err != nil {
			return err
		}
	}
	return nil
}
