package client

import (
	"net/url"
	"strconv"
)

// UserFilter selects users for ListUsers. Empty fields do not filter.
type UserFilter struct {
	Query  string // substring of username, display name or email
	Group  string
	Role   string
	Status string // api.UserActive or api.UserDisabled
	Limit  int    // page size; 0 means the daemon's default
	Cursor string // a previous page's NextCursor
}

func (f UserFilter) values() url.Values {
	return query("q", f.Query, "group", f.Group, "role", f.Role, "status", f.Status,
		"cursor", f.Cursor, "limit", limit(f.Limit))
}

// FactorFilter selects factors for ListFactors.
type FactorFilter struct {
	User   string // id or username
	State  string
	Kind   string
	Device string
	Limit  int
	Cursor string
}

func (f FactorFilter) values() url.Values {
	return query("user", f.User, "state", f.State, "kind", f.Kind, "device", f.Device,
		"cursor", f.Cursor, "limit", limit(f.Limit))
}

// DeviceFilter selects devices for ListDevices.
type DeviceFilter struct {
	User   string
	State  string
	Serial string
	Limit  int
	Cursor string
}

func (f DeviceFilter) values() url.Values {
	return query("user", f.User, "state", f.State, "serial", f.Serial, "cursor", f.Cursor, "limit", limit(f.Limit))
}

// EnrolmentFilter selects enrolments for ListEnrolments.
type EnrolmentFilter struct {
	User   string
	State  string
	Limit  int
	Cursor string
}

func (f EnrolmentFilter) values() url.Values {
	return query("user", f.User, "state", f.State, "cursor", f.Cursor, "limit", limit(f.Limit))
}

// TokenFilter selects tokens for ListTokens.
type TokenFilter struct {
	User   string
	Limit  int
	Cursor string
}

func (f TokenFilter) values() url.Values {
	return query("user", f.User, "cursor", f.Cursor, "limit", limit(f.Limit))
}

// ApprovalFilter selects approval requests for ListApprovals.
type ApprovalFilter struct {
	State  string // api.ApprovalPending, …; empty means every state
	Limit  int
	Cursor string
}

func (f ApprovalFilter) values() url.Values {
	return query("state", f.State, "cursor", f.Cursor, "limit", limit(f.Limit))
}

// AuditFilter selects audit events for ListAudit. The audit log pages by
// sequence number: After is the cursor, and a page's NextCursor is the
// sequence number of its last event (see [NextAfter]).
type AuditFilter struct {
	After  uint64 // events with a larger sequence number
	Limit  int
	Target string // target id
	Actor  string // actor id
	Action string // e.g. "factor.revoke"
}

func (f AuditFilter) values() url.Values {
	after := ""
	if f.After > 0 {
		after = strconv.FormatUint(f.After, 10)
	}
	return query("after", after, "target", f.Target, "actor", f.Actor, "action", f.Action,
		"limit", limit(f.Limit))
}

// query builds url.Values from name, value pairs, skipping empty values.
func query(kv ...string) url.Values {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] != "" {
			v.Set(kv[i], kv[i+1])
		}
	}
	return v
}

func limit(n int) string {
	if n <= 0 {
		return ""
	}
	return strconv.Itoa(n)
}
