package core

import (
	"context"
	"time"

	"github.com/keyfleet/keyfleet/daemon/audit"
)

// Store keeps the domain's records. daemon/store implements it on Badger;
// its in-memory mode serves unit tests. The interface is typed (not a
// key-value bag) so that a SQL implementation can map each method to a
// table and an index.
type Store interface {
	// Update runs fn in a read-write transaction and commits it durably
	// before returning. The audit events fn appends commit with its writes
	// or not at all. fn may run more than once if it collides with a
	// concurrent transaction, so it must not have effects outside tx.
	// Returns ErrUnavailable when the store cannot take writes.
	Update(ctx context.Context, fn func(tx Tx) error) error
	// View runs fn in a read-only snapshot.
	View(ctx context.Context, fn func(tx ReadTx) error) error
	// AuditHead is the last committed link of the audit chain.
	AuditHead() audit.Head
	// AuditScan calls fn for each stored audit record with seq > after, in
	// the store's key order, until fn returns false or an error. key is the
	// sequence number the record is filed under.
	AuditScan(ctx context.Context, after uint64, fn func(key uint64, r audit.Record) (bool, error)) error
	// Ready reports whether the store takes writes (nil) or why not.
	Ready() error
}

// ReadTx reads a consistent snapshot. Getters return a *NotFoundError
// (errors.Is ErrNotFound) for missing records.
type ReadTx interface {
	User(id string) (User, error)
	UserByName(username string) (User, error)
	Users(f UserFilter, p PageReq) ([]User, string, error)
	Factor(id string) (Factor, error)
	Factors(f FactorFilter, p PageReq) ([]Factor, string, error)
	Device(id string) (Device, error)
	DeviceBySerial(vendor, serial string) (Device, error)
	Devices(f DeviceFilter, p PageReq) ([]Device, string, error)
	Enrolment(id string) (Enrolment, error)
	Enrolments(f EnrolmentFilter, p PageReq) ([]Enrolment, string, error)
	Token(id string) (Token, error)
	Tokens(f TokenFilter, p PageReq) ([]Token, string, error)
	Approval(id string) (Approval, error)
	Approvals(f ApprovalFilter, p PageReq) ([]Approval, string, error)
	// AuditMatching lists the sequence numbers of the events that have
	// every value q names, oldest or newest first (AuditMatch).
	AuditMatching(q AuditMatch) (seqs []uint64, next uint64, err error)
	AuditRecord(seq uint64) (audit.Record, error)
	Verification(id string) (Verification, error)
	PolicyReadTx
	RecoveryReadTx
	DirectoryReadTx
}

// Tx is a read-write transaction.
type Tx interface {
	ReadTx
	// InsertUser adds a new user; ErrAlreadyExists if the username is taken.
	InsertUser(u User) error
	PutUser(u User) error
	DeleteUser(u User) error
	PutFactor(f Factor) error
	DeleteFactor(f Factor) error
	// InsertDevice adds a device; ErrAlreadyExists if vendor+serial is known.
	InsertDevice(d Device) error
	PutDevice(d Device) error
	PutEnrolment(e Enrolment) error
	DeleteEnrolment(e Enrolment) error
	PutToken(t Token) error
	DeleteToken(t Token) error
	PutApproval(a Approval) error
	// PutVerification keeps a begun verification until it expires.
	PutVerification(v Verification) error
	DeleteVerification(v Verification) error
	// UseVerification marks a verification finished, until it would have
	// expired anyway, and reports whether it was fresh (not used before).
	UseVerification(id string, until time.Time) (bool, error)
	PolicyTx
	RecoveryTx
	DirectoryTx
	// Audit appends ev to the audit chain as part of this transaction and
	// assigns ev.Seq at commit.
	Audit(ev *audit.Event) error
}

// AuditField names a field of audit events that stores index.
type AuditField string

// The indexed fields of audit events.
const (
	AuditTarget AuditField = "target" // Event.Target.ID
	AuditActor  AuditField = "actor"  // Event.Actor.ID
	AuditAction AuditField = "action" // Event.Action
)

// AuditMatch asks the audit indexes for the events that have every one
// of its values (at least one is set), after After and at or before
// Through, oldest first: at most Limit of them, reading at most Examine
// index entries (a store of rows: rows). The indexes are intersected by
// sequence number, so the events themselves are not read: a filter on
// several fields costs what the rarest of them has, up to the bound.
// AuditMatching returns next, the sequence number up to which it
// looked, when it stopped at Examine before it had Limit events (go on
// after it); otherwise 0. With Newest the events come newest first, and
// next is then the sequence number down to which it looked (go on below
// it).
type AuditMatch struct {
	Target, Actor, Action string
	After, Through        uint64
	Limit, Examine        int
	Newest                bool
}

// PageReq asks for one page of a list. After is the cursor from the last
// page ("" for the first); Limit is clamped to [1, MaxPageSize].
type PageReq struct {
	After string
	Limit int
}

// Page sizes.
const (
	DefaultPageSize = 50
	MaxPageSize     = 500
)

// Clamp returns p with a usable limit.
func (p PageReq) Clamp() PageReq {
	switch {
	case p.Limit <= 0:
		p.Limit = DefaultPageSize
	case p.Limit > MaxPageSize:
		p.Limit = MaxPageSize
	}
	return p
}

// UserFilter narrows a user list. Zero fields match everything.
//
// A list is in username order, except with a Query: then it is in the
// order of the search term each user matched by (User.MatchTerm), then
// username; each user once. Stores answer every filter through an index
// and examine at most MaxExamined records for a page; a page that reaches
// the bound comes back short (even empty) with a cursor to go on from.
type UserFilter struct {
	// Query is the start of the username, the email address, its domain
	// ("@example.org"), the display name or a word of it, in any case.
	Query  string
	Group  string
	Role   string
	Status string
}

// Match reports whether u passes the filter.
func (f UserFilter) Match(u User) bool {
	if f.Query != "" {
		if _, ok := u.MatchTerm(f.Query); !ok {
			return false
		}
	}
	return (f.Status == "" || u.Status == f.Status) &&
		(f.Group == "" || contains(u.Groups, f.Group)) &&
		(f.Role == "" || contains(u.Roles, f.Role))
}

// FactorFilter narrows a factor list.
type FactorFilter struct {
	UserID, DeviceID, State, Kind string
}

// Match reports whether x passes the filter.
func (f FactorFilter) Match(x Factor) bool {
	return (f.UserID == "" || x.UserID == f.UserID) && (f.DeviceID == "" || x.DeviceID == f.DeviceID) &&
		(f.State == "" || x.State == f.State) && (f.Kind == "" || x.Kind == f.Kind)
}

// DeviceFilter narrows a device list.
type DeviceFilter struct{ UserID, State, Serial string }

// Match reports whether d passes the filter.
func (f DeviceFilter) Match(d Device) bool {
	return (f.UserID == "" || d.UserID == f.UserID) && (f.State == "" || d.State == f.State) &&
		(f.Serial == "" || d.Serial == f.Serial)
}

// EnrolmentFilter narrows an enrolment list. State is the stored state.
type EnrolmentFilter struct{ UserID, State string }

// Match reports whether e passes the filter.
func (f EnrolmentFilter) Match(e Enrolment) bool {
	return (f.UserID == "" || e.UserID == f.UserID) && (f.State == "" || e.State == f.State)
}

// TokenFilter narrows a token list.
type TokenFilter struct{ UserID string }

// Match reports whether t passes the filter.
func (f TokenFilter) Match(t Token) bool { return f.UserID == "" || t.UserID == f.UserID }

// ApprovalFilter narrows an approval list. State is the stored state.
type ApprovalFilter struct{ State, RequestedBy string }

// Match reports whether a passes the filter.
func (f ApprovalFilter) Match(a Approval) bool {
	return (f.State == "" || a.State == f.State) && (f.RequestedBy == "" || a.RequestedBy.ID == f.RequestedBy)
}
