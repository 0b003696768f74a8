package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/keyfleet/keyfleet/daemon/audit"
	"github.com/keyfleet/keyfleet/daemon/core"
)

type readTx struct {
	txn    *badger.Txn
	advice *readAdvice // nil in a write transaction
	random func()      // ends the random reads it asked for (readRandomly)
	// freeName is the username UserByName last found no user under, ""
	// once anything in the transaction writes a username (tx.nameWritten):
	// InsertUser takes it as free without reading it again. Badger
	// checks, at the commit, the first read against other transactions.
	freeName string
}

// readRandomly marks the store's tables as read at random until the
// transaction ends (readadvice.go): for a list whose records lie anywhere
// in the store. A write transaction reads as usual.
func (r *readTx) readRandomly() {
	if r.random == nil {
		r.random = r.advice.randomReads()
	}
}

// endRandomReads ends what readRandomly began.
func (r *readTx) endRandomReads() {
	if r.random != nil {
		r.random()
		r.random = nil
	}
}

type tx struct {
	readTx
	w      *wtxn // writes go through w; reads through readTx
	events []*audit.Event
}

// wtxn is the write side of a transaction: Badger's, noting whether
// anything was written, since a transaction that wrote nothing has nothing
// to wait for a sync for.
type wtxn struct {
	*badger.Txn
	wrote    bool
	maxValue int // values this long or longer are refused
}

func (w *wtxn) Set(k, v []byte) error {
	if err := w.checkSize(k, v); err != nil {
		return err
	}
	w.wrote = true
	return tooBig(w.Txn.Set(k, v))
}

// ErrTooLarge is wrapped by the error of a write that makes its
// transaction larger than the store takes at once (Badger's limit, a
// share of the memtable: store.memory sizes it). It wraps core.ErrInvalid.
var ErrTooLarge = fmt.Errorf("%w: the change is larger than the store writes in one transaction", core.ErrInvalid)

// tooBig says what to do about Badger's ErrTxnTooBig; the error also
// wraps core.ErrTxnTooLarge, on which the directory sync splits a batch.
func tooBig(err error) error {
	if errors.Is(err, badger.ErrTxnTooBig) {
		return fmt.Errorf("%w: split it into smaller ones (an import: into files of fewer rows), or give the store more memory (store.memory) (%w)", ErrTooLarge, core.ErrTxnTooLarge)
	}
	return err
}

// checkSize refuses a value Badger would put in its value log, a file it
// writes through a memory map that the store does not allocate ahead (see
// space.go). No keyfleet record comes near the limit (1 MiB by default).
func (w *wtxn) checkSize(k, v []byte) error {
	if len(v) >= w.maxValue {
		return fmt.Errorf("%w: a record of %d bytes (%.20q) is larger than the store takes (%d bytes)", core.ErrInvalid, len(v), k, w.maxValue-1)
	}
	return nil
}

func (w *wtxn) Delete(k []byte) error { w.wrote = true; return tooBig(w.Txn.Delete(k)) }

func (w *wtxn) SetEntry(e *badger.Entry) error {
	if err := w.checkSize(e.Key, e.Value); err != nil {
		return err
	}
	w.wrote = true
	return tooBig(w.Txn.SetEntry(e))
}

func newTx(txn *badger.Txn, maxValue int) *tx {
	return &tx{readTx: readTx{txn: txn}, w: &wtxn{Txn: txn, maxValue: maxValue}}
}

var (
	_ core.ReadTx = (*readTx)(nil)
	_ core.Tx     = (*tx)(nil)
)

func get[T any](txn *badger.Txn, k []byte, kind, ref string) (T, error) {
	var v T
	item, err := txn.Get(k)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return v, &core.NotFoundError{Kind: kind, Ref: ref}
	}
	if err != nil {
		return v, fmt.Errorf("reading %s %s: %w", kind, ref, err)
	}
	err = item.Value(func(b []byte) error { return json.Unmarshal(b, &v) })
	if err != nil {
		return v, fmt.Errorf("decoding %s %s: %w", kind, ref, err)
	}
	return v, nil
}

func getString(txn *badger.Txn, k []byte, kind, ref string) (string, error) {
	item, err := txn.Get(k)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return "", &core.NotFoundError{Kind: kind, Ref: ref}
	}
	if err != nil {
		return "", fmt.Errorf("reading %s %s: %w", kind, ref, err)
	}
	v, err := item.ValueCopy(nil)
	return string(v), err
}

func put(txn setter, k []byte, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encoding %s: %w", k, err)
	}
	return txn.Set(k, b)
}

func exists(txn *badger.Txn, k []byte) (bool, error) {
	_, err := txn.Get(k)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return false, nil
	}
	return err == nil, err
}

// list pages through the records under prefix, starting after the cursor,
// keeping those that match. load turns an index entry into a record and its
// cursor value.
func list[T any](txn *badger.Txn, prefix []byte, pg core.PageReq, load func(item *badger.Item) (T, string, error), match func(T) bool) ([]T, string, error) {
	opts := badger.DefaultIteratorOptions
	opts.Prefix = prefix
	opts.PrefetchValues = false
	it := txn.NewIterator(opts)
	defer it.Close()
	start := prefix
	if pg.After != "" {
		start = append(bytes.Clone(prefix), pg.After...)
	}
	var out []T
	var last string
	for it.Seek(start); it.Valid(); it.Next() {
		v, cur, err := load(it.Item())
		if err != nil {
			return nil, "", err
		}
		if cur == pg.After {
			continue
		}
		if !match(v) {
			continue
		}
		if len(out) == pg.Limit {
			return out, last, nil
		}
		out, last = append(out, v), cur
	}
	return out, "", nil
}

// loadValue decodes a primary record; its cursor is the key after prefix.
func loadValue[T any](prefix string) func(*badger.Item) (T, string, error) {
	return func(item *badger.Item) (T, string, error) {
		var v T
		err := item.Value(func(b []byte) error { return json.Unmarshal(b, &v) })
		return v, string(item.Key()[len(prefix):]), err
	}
}

// loadIndexed follows an index entry whose last key segment is a record id.
func loadIndexed[T any](txn *badger.Txn, prefix, kind string, indexPrefix []byte) func(*badger.Item) (T, string, error) {
	return func(item *badger.Item) (T, string, error) {
		id := lastSegment(item.Key())
		v, err := get[T](txn, key(prefix, id), kind, id)
		return v, string(item.Key()[len(indexPrefix):]), err
	}
}

func (r *readTx) User(id string) (core.User, error) {
	return get[core.User](r.txn, key(pUser, id), "user", id)
}

func (r *readTx) UserByName(name string) (core.User, error) {
	id, err := getString(r.txn, key(pUsername, name), "user", name)
	if errors.Is(err, core.ErrNotFound) {
		r.freeName = name
	}
	if err != nil {
		return core.User{}, err
	}
	return r.User(id)
}

// nameTaken reports whether a user holds name: no when UserByName just
// found none (readTx.freeName), else as the store has it.
func (t *tx) nameTaken(name string) (bool, error) {
	if name != "" && name == t.freeName {
		return false, nil
	}
	return exists(t.txn, key(pUsername, name))
}

// nameWritten: the transaction writes a username (un/): a name UserByName
// found free may be taken now.
func (t *tx) nameWritten() { t.freeName = "" }

func (r *readTx) Factor(id string) (core.Factor, error) {
	return get[core.Factor](r.txn, key(pFactor, id), "factor", id)
}

func (r *readTx) Factors(f core.FactorFilter, pg core.PageReq) ([]core.Factor, string, error) {
	var prefix []byte
	var load func(*badger.Item) (core.Factor, string, error)
	switch {
	case f.DeviceID != "":
		prefix = key(pDevFactor, f.DeviceID, "/")
		load = loadIndexed[core.Factor](r.txn, pFactor, "factor", prefix)
	case f.UserID != "":
		prefix = key(pUserFactor, f.UserID, "/")
		load = loadIndexed[core.Factor](r.txn, pFactor, "factor", prefix)
	default:
		prefix = []byte(pFactor)
		load = loadValue[core.Factor](pFactor)
	}
	return list(r.txn, prefix, pg, load, f.Match)
}

func (r *readTx) Device(id string) (core.Device, error) {
	return get[core.Device](r.txn, key(pDevice, id), "device", id)
}

func (r *readTx) DeviceBySerial(vendor, serial string) (core.Device, error) {
	id, err := getString(r.txn, deviceSerialKey(vendor, serial), "device", vendor+" "+serial)
	if err != nil {
		return core.Device{}, err
	}
	return r.Device(id)
}

func (r *readTx) Devices(f core.DeviceFilter, pg core.PageReq) ([]core.Device, string, error) {
	return list(r.txn, []byte(pDevice), pg, loadValue[core.Device](pDevice), f.Match)
}

func (r *readTx) Enrolment(id string) (core.Enrolment, error) {
	return get[core.Enrolment](r.txn, key(pEnrolment, id), "enrolment", id)
}

func (r *readTx) Enrolments(f core.EnrolmentFilter, pg core.PageReq) ([]core.Enrolment, string, error) {
	return list(r.txn, []byte(pEnrolment), pg, loadValue[core.Enrolment](pEnrolment), f.Match)
}

func (r *readTx) Token(id string) (core.Token, error) {
	return get[core.Token](r.txn, key(pToken, id), "token", id)
}

func (r *readTx) Tokens(f core.TokenFilter, pg core.PageReq) ([]core.Token, string, error) {
	return list(r.txn, []byte(pToken), pg, loadValue[core.Token](pToken), f.Match)
}

func (r *readTx) Approval(id string) (core.Approval, error) {
	return get[core.Approval](r.txn, key(pApproval, id), "approval", id)
}

func (r *readTx) Approvals(f core.ApprovalFilter, pg core.PageReq) ([]core.Approval, string, error) {
	return list(r.txn, []byte(pApproval), pg, loadValue[core.Approval](pApproval), f.Match)
}

func (r *readTx) AuditRecord(seq uint64) (audit.Record, error) {
	item, err := r.txn.Get(auditKey(seq))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return audit.Record{}, &core.NotFoundError{Kind: "audit event", Ref: fmt.Sprint(seq)}
	}
	if err != nil {
		return audit.Record{}, err
	}
	v, err := item.ValueCopy(nil)
	if err != nil {
		return audit.Record{}, err
	}
	return audit.Unmarshal(v)
}

func (t *tx) InsertUser(u core.User) error {
	ok, err := t.nameTaken(u.Username)
	if err != nil {
		return err
	}
	if ok {
		return fmt.Errorf("%w: username %q is taken", core.ErrAlreadyExists, u.Username)
	}
	t.nameWritten()
	if err := t.w.Set(key(pUsername, u.Username), []byte(u.ID)); err != nil {
		return err
	}
	if err := indexUser(t.w, nil, u); err != nil {
		return err
	}
	if err := putUserRecords(t.w, u); err != nil {
		return err
	}
	return putExternalIndex(t.w, u)
}

// PutUser writes the user, their policy facts, their index entries
// (reading the user as stored, to take out the entries that no longer
// apply) and their directory link.
func (t *tx) PutUser(u core.User) error {
	was, err := storedUser(t.txn, u.ID)
	if err != nil {
		return err
	}
	if err := indexUser(t.w, was, u); err != nil {
		return err
	}
	if err := putUserRecords(t.w, u); err != nil {
		return err
	}
	return putExternalIndex(t.w, u)
}

func (t *tx) DeleteUser(u core.User) error {
	was, err := storedUser(t.txn, u.ID)
	if err != nil {
		return err
	}
	if was != nil {
		if err := unindexUser(t.w, *was); err != nil {
			return err
		}
	}
	t.nameWritten()
	if err := t.w.Delete(key(pUsername, u.Username)); err != nil {
		return err
	}
	if u.External != nil && u.External.ID != "" {
		if err := t.w.Delete(externalKey(u.External.Source, u.External.ID)); err != nil {
			return err
		}
	}
	if err := t.w.Delete(userFactsKey(u.ID)); err != nil {
		return err
	}
	return t.w.Delete(key(pUser, u.ID))
}

// PutFactor writes the factor, its indexes and its policy facts.
func (t *tx) PutFactor(f core.Factor) error { return putFactorRecords(t.w, f) }

func (t *tx) DeleteFactor(f core.Factor) error {
	if err := t.w.Delete(userFactorKey(f.UserID, f.ID)); err != nil {
		return err
	}
	if err := t.w.Delete(factsSubKey(f.UserID, tagFactor, f.ID)); err != nil {
		return err
	}
	if f.DeviceID != "" {
		if err := t.w.Delete(devFactorKey(f.DeviceID, f.ID)); err != nil {
			return err
		}
	}
	return t.w.Delete(key(pFactor, f.ID))
}

func (t *tx) InsertDevice(d core.Device) error {
	k := deviceSerialKey(d.Vendor, d.Serial)
	ok, err := exists(t.txn, k)
	if err != nil {
		return err
	}
	if ok {
		return fmt.Errorf("%w: %s key %s is already registered", core.ErrAlreadyExists, d.Vendor, d.Serial)
	}
	if err := t.w.Set(k, []byte(d.ID)); err != nil {
		return err
	}
	return t.PutDevice(d)
}

func (t *tx) PutDevice(d core.Device) error { return put(t.w, key(pDevice, d.ID), d) }

func (t *tx) PutEnrolment(e core.Enrolment) error { return put(t.w, key(pEnrolment, e.ID), e) }

func (t *tx) DeleteEnrolment(e core.Enrolment) error { return t.w.Delete(key(pEnrolment, e.ID)) }

func (t *tx) PutToken(k core.Token) error { return put(t.w, key(pToken, k.ID), k) }

func (t *tx) DeleteToken(k core.Token) error { return t.w.Delete(key(pToken, k.ID)) }

func (t *tx) PutApproval(a core.Approval) error { return put(t.w, key(pApproval, a.ID), a) }

func (r *readTx) Verification(id string) (core.Verification, error) {
	return get[core.Verification](r.txn, key(pVerify, id), "verification", id)
}

// PutVerification stores v with a Badger TTL, so verifications nobody
// finished vanish on their own.
func (t *tx) PutVerification(v core.Verification) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	ttl := time.Until(v.ExpiresAt) + time.Minute
	return t.w.SetEntry(badger.NewEntry(key(pVerify, v.ID), b).WithTTL(max(ttl, time.Minute)))
}

func (t *tx) DeleteVerification(v core.Verification) error { return t.w.Delete(key(pVerify, v.ID)) }

// UseVerification writes a used-marker that lives until the verification
// would have expired; two racing finishes both read it absent and write
// it, so one of them conflicts, retries, and finds it.
func (t *tx) UseVerification(id string, until time.Time) (bool, error) {
	k := key(pVerifyUsed, id)
	used, err := exists(t.txn, k)
	if err != nil || used {
		return false, err
	}
	ttl := max(time.Until(until)+time.Minute, time.Minute)
	return true, t.w.SetEntry(badger.NewEntry(k, nil).WithTTL(ttl))
}

func (t *tx) Audit(ev *audit.Event) error {
	if ev.Action == "" {
		return errors.New("audit event without an action")
	}
	t.events = append(t.events, ev)
	return nil
}
