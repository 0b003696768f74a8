package postgres

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/keyfleet/keyfleet/daemon/audit"
	"github.com/keyfleet/keyfleet/daemon/core"
)

func (r *readTx) User(id string) (core.User, error) {
	return get[core.User](r, tUsers, id, "user", id)
}

func (r *readTx) UserByName(name string) (core.User, error) {
	hash := r.s.box.index("username", name)
	if r.track != nil && r.track.cache {
		// A username never changes; a user deleted since is not found by
		// id (then the name is looked up again), or fails the check at
		// the end of the transaction (cache.go).
		if id, ok := r.s.cache.userID(hash); ok {
			u, err := r.User(id)
			if !errors.Is(err, core.ErrNotFound) {
				r.track.cached = true
				return u, err
			}
			r.s.cache.setUserID(hash, "")
		}
	}
	var id string
	err := r.q.QueryRow(r.ctx, "SELECT k FROM users WHERE name_hash = $1", hash).Scan(&id)
	if err != nil {
		if isNoRows(err) {
			return core.User{}, &core.NotFoundError{Kind: "user", Ref: name}
		}
		return core.User{}, r.fail(err)
	}
	// From a snapshot too: a username maps to one user id for as long as
	// that user lives, and a deleted one is not found by id.
	r.s.cache.setUserID(hash, id)
	return r.User(id)
}

func (r *readTx) Factor(id string) (core.Factor, error) {
	return get[core.Factor](r, tFactors, id, "factor", id)
}

func (r *readTx) Factors(f core.FactorFilter, pg core.PageReq) ([]core.Factor, string, error) {
	w := where{}
	w.eq("user_id", f.UserID)
	w.eq("device_id", f.DeviceID)
	w.eq("state", f.State)
	w.eq("kind", f.Kind)
	return list(r, tFactors, w, pg, f.Match)
}

func (r *readTx) Device(id string) (core.Device, error) {
	return get[core.Device](r, tDevices, id, "device", id)
}

func (r *readTx) DeviceBySerial(vendor, serial string) (core.Device, error) {
	var id string
	err := r.q.QueryRow(r.ctx, "SELECT k FROM devices WHERE vs_hash = $1", r.s.box.index("device", vendor, serial)).Scan(&id)
	if err != nil {
		if isNoRows(err) {
			return core.Device{}, &core.NotFoundError{Kind: "device", Ref: vendor + " " + serial}
		}
		return core.Device{}, r.fail(err)
	}
	return r.Device(id)
}

func (r *readTx) Devices(f core.DeviceFilter, pg core.PageReq) ([]core.Device, string, error) {
	w := where{}
	w.eq("user_id", f.UserID)
	w.eq("state", f.State)
	if f.Serial != "" {
		w.eqAny("serial_hash", r.s.box.index("serial", f.Serial))
	}
	return list(r, tDevices, w, pg, f.Match)
}

func (r *readTx) Enrolment(id string) (core.Enrolment, error) {
	return get[core.Enrolment](r, tEnrolments, id, "enrolment", id)
}

func (r *readTx) Enrolments(f core.EnrolmentFilter, pg core.PageReq) ([]core.Enrolment, string, error) {
	w := where{}
	w.eq("user_id", f.UserID)
	w.eq("state", f.State)
	return list(r, tEnrolments, w, pg, f.Match)
}

func (r *readTx) Token(id string) (core.Token, error) {
	return get[core.Token](r, tTokens, id, "token", id)
}

func (r *readTx) Tokens(f core.TokenFilter, pg core.PageReq) ([]core.Token, string, error) {
	w := where{}
	w.eq("user_id", f.UserID)
	return list(r, tTokens, w, pg, f.Match)
}

func (r *readTx) Approval(id string) (core.Approval, error) {
	return get[core.Approval](r, tApprovals, id, "approval", id)
}

func (r *readTx) Approvals(f core.ApprovalFilter, pg core.PageReq) ([]core.Approval, string, error) {
	w := where{}
	w.eq("state", f.State)
	w.eq("requested_by", f.RequestedBy)
	return list(r, tApprovals, w, pg, f.Match)
}

func (r *readTx) AuditRecord(seq uint64) (audit.Record, error) {
	var sealed []byte
	err := r.q.QueryRow(r.ctx, "SELECT rec FROM audit WHERE seq = $1", int64(seq)).Scan(&sealed)
	if err != nil {
		if isNoRows(err) {
			return audit.Record{}, &core.NotFoundError{Kind: "audit event", Ref: fmt.Sprint(seq)}
		}
		return audit.Record{}, r.fail(err)
	}
	return r.s.openAudit(seq, sealed)
}

// AuditMatching reads the index of one of q's values (target, else
// actor, else action), at most q.Examine rows of it, and keeps the events
// that have the others too: the database compares the columns, no event
// is read here.
func (r *readTx) AuditMatching(q core.AuditMatch) ([]uint64, uint64, error) {
	var cols []string
	var vals []any
	for _, x := range [...]struct{ col, value string }{{"target", q.Target}, {"actor", q.Actor}, {"action", q.Action}} {
		if x.value != "" {
			cols, vals = append(cols, x.col), append(vals, x.value)
		}
	}
	if len(cols) == 0 {
		return nil, 0, fmt.Errorf("%w: an audit match names no target, actor or action", core.ErrInvalid)
	}
	if q.Limit <= 0 || q.After >= q.Through || q.After >= math.MaxInt64 {
		return nil, 0, nil
	}
	match := "true"
	for i := 1; i < len(cols); i++ {
		match += fmt.Sprintf(" AND %s = $%d", cols[i], 4+i)
	}
	order := "seq"
	if q.Newest {
		order = "seq DESC"
	}
	sql := "SELECT seq, " + match + " FROM audit WHERE " + cols[0] + " = $1 AND " + cols[0] + " <> '' AND seq > $2 AND seq <= $3 ORDER BY " + order + " LIMIT $4"
	args := append([]any{vals[0], int64(q.After), int64(min(q.Through, math.MaxInt64)), max(q.Examine, 1)}, vals[1:]...)
	rows, err := r.q.Query(r.ctx, sql, args...)
	if err != nil {
		return nil, 0, r.fail(err)
	}
	defer rows.Close()
	var out []uint64
	var seq int64
	examined := 0
	for rows.Next() {
		var ok bool
		if err := rows.Scan(&seq, &ok); err != nil {
			return nil, 0, err
		}
		examined++
		if ok {
			if out = append(out, uint64(seq)); len(out) == q.Limit {
				return out, 0, nil
			}
		}
	}
	if err := rows.Err(); err != nil {
		return nil, 0, r.fail(err)
	}
	if examined == max(q.Examine, 1) {
		return out, uint64(seq), nil // stopped at the bound: after it, or newest first below it
	}
	return out, 0, nil
}

// fail2 is fail for a possibly nil error.
func (r *readTx) fail2(err error) error {
	if err == nil {
		return nil
	}
	return r.fail(err)
}

func (r *readTx) Verification(id string) (core.Verification, error) {
	var xmin string
	var sealed []byte
	err := r.q.QueryRow(r.ctx, "SELECT xmin::text, rec FROM verifications WHERE k = $1 AND expires > $2", id, time.Now()).Scan(&xmin, &sealed)
	if err != nil {
		if isNoRows(err) {
			r.noteRead(tVerifications, id, "")
			return core.Verification{}, &core.NotFoundError{Kind: "verification", Ref: id}
		}
		return core.Verification{}, r.fail(err)
	}
	r.noteRead(tVerifications, id, xmin)
	return decode[core.Verification](r.s.box, tVerifications, id, sealed, "verification")
}

func (t *tx) InsertUser(u core.User) error {
	name := t.s.box.index("username", u.Username)
	if err := t.insert(tUsers, u.ID, u, fmt.Sprintf("username %q is taken", u.Username),
		name, t.s.box.seal("username", u.ID, []byte(u.Username)), u.Status); err != nil {
		return err
	}
	if err := t.putLink(u); err != nil {
		return err
	}
	return t.putUserFacts(u)
}

// PutUser writes the user and their policy facts.
func (t *tx) PutUser(u core.User) error {
	if err := t.put(tUsers, u.ID, u, t.s.box.index("username", u.Username),
		t.s.box.seal("username", u.ID, []byte(u.Username)), u.Status); err != nil {
		return err
	}
	if err := t.putLink(u); err != nil {
		return err
	}
	return t.putUserFacts(u)
}

func (t *tx) DeleteUser(u core.User) error {
	if err := t.del(tUsers, u.ID); err != nil {
		return err
	}
	if err := t.deleteLink(u); err != nil {
		return err
	}
	return t.deleteFacts(u.ID, "")
}

// PutFactor writes the factor and its policy facts.
func (t *tx) PutFactor(f core.Factor) error {
	if err := t.put(tFactors, f.ID, f, f.UserID, f.DeviceID, f.State, f.Kind); err != nil {
		return err
	}
	return t.putFactorFacts(f)
}

func (t *tx) DeleteFactor(f core.Factor) error {
	if err := t.del(tFactors, f.ID); err != nil {
		return err
	}
	return t.deleteFacts(f.UserID, factorSub(f.ID))
}

func (t *tx) deviceCols(d core.Device) []any {
	return []any{t.s.box.index("device", d.Vendor, d.Serial), t.s.box.index("serial", d.Serial), d.UserID, d.State}
}

func (t *tx) InsertDevice(d core.Device) error {
	return t.insert(tDevices, d.ID, d, fmt.Sprintf("%s key %s is already registered", d.Vendor, d.Serial), t.deviceCols(d)...)
}

func (t *tx) PutDevice(d core.Device) error { return t.put(tDevices, d.ID, d, t.deviceCols(d)...) }

func (t *tx) PutEnrolment(e core.Enrolment) error {
	return t.put(tEnrolments, e.ID, e, e.UserID, e.State)
}

func (t *tx) DeleteEnrolment(e core.Enrolment) error { return t.del(tEnrolments, e.ID) }

func (t *tx) PutToken(k core.Token) error { return t.put(tTokens, k.ID, k, k.UserID) }

func (t *tx) DeleteToken(k core.Token) error { return t.del(tTokens, k.ID) }

func (t *tx) PutApproval(a core.Approval) error {
	return t.put(tApprovals, a.ID, a, a.State, a.RequestedBy.ID)
}

// PutVerification keeps v until a minute after it expires; a sweep
// (Store.Sweep) deletes it after that.
func (t *tx) PutVerification(v core.Verification) error {
	return t.put(tVerifications, v.ID, v, ttlAfter(v.ExpiresAt))
}

func (t *tx) DeleteVerification(v core.Verification) error { return t.del(tVerifications, v.ID) }

// UseVerification writes a used-marker that lasts until the verification
// would have expired. Of two racing finishes, the second waits for the
// first's row and then finds it.
func (t *tx) UseVerification(id string, until time.Time) (bool, error) {
	now := time.Now()
	t.dirty = true
	rows, err := t.conn.Query(t.ctx, `INSERT INTO verifications_used (k, expires) VALUES ($1, $2)
		ON CONFLICT (k) DO UPDATE SET expires = EXCLUDED.expires WHERE verifications_used.expires <= $3
		RETURNING k`, id, ttlAfter(until), now)
	if err != nil {
		return false, t.fail(err)
	}
	fresh := rows.Next()
	rows.Close()
	if err := rows.Err(); err != nil {
		return false, t.fail(err)
	}
	return fresh, nil
}
