package events

import (
	"fmt"
	"path"
	"strings"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/audit"
)

// Schema names the payload version. It changes only when a field changes
// meaning or disappears; new fields may be added within a version.
const Schema = "keyfleet.audit/v1"

// Severities, lowest first.
const (
	SeverityInfo    = "info"
	SeverityNotice  = "notice"
	SeverityWarning = "warning"
	SeverityHigh    = "high"
)

// Severities lists every severity, lowest first.
var Severities = []string{SeverityInfo, SeverityNotice, SeverityWarning, SeverityHigh}

// ActionDeadLetter is the audit action the daemon should record for a
// [DeadLetter]. A sink never reports dead letters for a batch made only of
// its own dead-letter events, so a receiver that stays down does not start
// an endless loop of reports.
const ActionDeadLetter = "events.dead_letter"

// Event is what every sink delivers: the audit record's wire form plus the
// schema version and a severity. Its JSON is documented in docs/events.md.
type Event struct {
	Schema string `json:"schema"`
	// ID is unique across restores of the store: the epoch and the seq
	// (epoch.go). Empty for a source without epochs.
	ID    string `json:"id,omitempty"`
	Epoch string `json:"epoch,omitempty"`
	api.AuditEvent
	Severity string `json:"severity"`
}

// SetEpoch names the epoch the event was written in, and so its ID.
func (e *Event) SetEpoch(epoch string) {
	if epoch == "" {
		return
	}
	e.Epoch, e.ID = epoch, fmt.Sprintf("%s-%d", epoch, e.Seq)
}

// FromRecord decodes an audit record into an Event.
func FromRecord(r audit.Record) (Event, error) {
	ae, err := r.API()
	if err != nil {
		return Event{}, fmt.Errorf("decoding audit record %d: %w", r.Seq, err)
	}
	return Event{Schema: Schema, AuditEvent: ae, Severity: Severity(ae.Action, ae)}, nil
}

// severityRule maps actions matching any of patterns (path.Match globs over
// the dotted action) to a severity, optionally only when match agrees.
type severityRule struct {
	severity string
	patterns []string
	match    func(ev api.AuditEvent) bool
}

// severityRules are tried in order; the first that matches wins.
var severityRules = []severityRule{
	{SeverityHigh, []string{"breakglass.*"}, nil},
	// Every action taken in a break-glass session carries extra.breakglass.
	{SeverityHigh, []string{"*"}, func(ev api.AuditEvent) bool { return ev.Extra["breakglass"] == "true" }},
	// A replayed code or a sign counter that went backwards (a cloned key?).
	{SeverityHigh, []string{"factor.verify_failed"}, func(ev api.AuditEvent) bool { return ev.Extra["suspicious"] == "true" }},
	{SeverityHigh, []string{"*.lockout", "*.locked", "lockout.*"}, nil},
	// "This wasn't me" on a push: someone else has the user's first factor.
	{SeverityHigh, []string{"push.reported"}, nil},
	{SeverityWarning, []string{"push.unanswered"}, nil},
	{SeverityHigh, []string{"*.attestation_failed", "attestation.fail*", "*.counter_regression", "*.sign_count_regression", "*.clone_suspected"}, nil},
	{SeverityInfo, []string{"audit.checkpoint"}, nil}, // routine: a signed head, every N events or minutes
	{SeverityHigh, []string{"device.lost", "audit.*", "store.*", ActionDeadLetter}, nil},
	// Every approval, and every change of privilege: a role granted or
	// taken away, a token made for a service account, the founding admins.
	{SeverityHigh, []string{"approval.approve", "approval.refused", "token.refused"}, nil},
	{SeverityHigh, []string{"*"}, func(ev api.AuditEvent) bool {
		return ev.Extra["privilege"] == "true" || ev.Extra["bootstrap"] == "true"
	}},
	{SeverityHigh, []string{"*"}, func(ev api.AuditEvent) bool {
		return ev.Extra["attestation"] == "failed" || ev.Extra["sign_count"] == "regressed"
	}},
	{SeverityWarning, []string{"factor.revoke", "factor.delete", "factor.suspend", "user.disable", "user.delete", "user.reset_mfa", "token.revoke"}, nil},
	{SeverityWarning, []string{"approval.deny", "approval.fail", "approval.void", "approval.expire", "*.fail", "*.failed", "*.denied", "*.reject*", "*.verify_failed"}, nil},
	{SeverityWarning, []string{"*.verify"}, func(ev api.AuditEvent) bool { return ev.Extra["outcome"] != "" && ev.Extra["outcome"] != "ok" }},
	{SeverityInfo, []string{"*.verify", "*.read", "*.list", "*.view"}, nil},
}

// Severity classifies an audit event for receivers that alert on it. It is
// a pure function of the action and the event, so it is the same for every
// sink and every replay. action is usually ev.Action; it is a parameter so
// callers can classify an action before an event exists.
//
//   - high: break-glass use (breakglass.* and every action in a session),
//     every approval, every change of privilege (extra.privilege: a role
//     granted or removed, a service account's token; extra.bootstrap),
//     lockouts, attestation failures, sign-counter regressions and replayed
//     codes (suspicious failed verifications), a lost device, approval of an action that removes MFA
//     (factor revoke or delete, MFA reset, user disable or delete), any
//     audit-chain event (audit.* but the routine audit.checkpoint), an
//     accepted loss of store data (store.loss_accepted), and undeliverable
//     events (events.dead_letter).
//   - warning: factors revoked, deleted or suspended; users disabled,
//     deleted or reset; tokens revoked; approvals denied, failed or
//     expired; any failed, denied or rejected action; failed verifications.
//   - info: successful verifications and reads, audit checkpoints.
//   - notice: every other change (creations, updates, enrolments, approval
//     requests, ...).
func Severity(action string, ev api.AuditEvent) string {
	for _, r := range severityRules {
		if matchAny(r.patterns, action) && (r.match == nil || r.match(ev)) {
			return r.severity
		}
	}
	return SeverityNotice
}

// matchAny reports whether s matches one of the globs (path.Match syntax;
// "*" spans dots, so "factor.*" also matches "factor.attestation.fail").
func matchAny(patterns []string, s string) bool {
	for _, p := range patterns {
		if glob(p, s) {
			return true
		}
	}
	return false
}

// glob is path.Match without its cost for the common patterns made of
// literal text and '*' (it runs for every event and every sink).
func glob(pattern, s string) bool {
	if strings.ContainsAny(pattern, `?[\`) {
		ok, _ := path.Match(pattern, s)
		return ok
	}
	first, rest, wild := strings.Cut(pattern, "*")
	if !wild {
		return pattern == s
	}
	if !strings.HasPrefix(s, first) {
		return false
	}
	s = s[len(first):]
	for {
		part, more, wild := strings.Cut(rest, "*")
		if !wild {
			return strings.HasSuffix(s, part)
		}
		i := strings.Index(s, part)
		if i < 0 {
			return false
		}
		s, rest = s[i+len(part):], more
	}
}
