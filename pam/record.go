package pam

import (
	"context"
	"log/slog"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/api/client"
)

// Every sign-in the helper decides is in keyfleetd's audit trail: a
// verification records itself (factor.verify, factor.verify_failed,
// push.unanswered…); a decision made without one is sent with POST
// /v1/login-decisions (login.allowed, login.refused), or kept in the
// spool while keyfleetd cannot take it and sent by a later sign-in.

// spoolFlushMax is how many kept decisions one sign-in sends at most.
const spoolFlushMax = 20

// decision is a record of in's sign-in decided with outcome for reason.
func (a *Authenticator) decision(in Login, outcome, reason string) api.LoginDecision {
	return api.LoginDecision{User: clean(in.User, 256), Outcome: outcome, Reason: reason, Service: clean(in.Service, 64),
		Host: clean(a.Host, 255), RemoteHost: clean(in.RHost, 255), ID: newRecordID(a.now())}
}

// record sends a decision to keyfleetd's audit trail, or keeps it in the
// spool when keyfleetd cannot take it now. The decision stands either
// way; one neither sent nor kept is logged as an error.
func (a *Authenticator) record(ctx context.Context, log *slog.Logger, in Login, outcome, reason string) {
	d := a.decision(in, outcome, reason)
	err := a.send(ctx, d)
	switch {
	case err == nil:
	case cannotAnswer(err):
		a.keep(log, d, err)
	default:
		log.Error("keyfleet refused the record of the sign-in: it is in syslog only", "outcome", outcome, "reason", reason, "err", err)
	}
}

// keep spools a decision keyfleetd could not take (why).
func (a *Authenticator) keep(log *slog.Logger, d api.LoginDecision, why error) {
	t := a.now()
	d.OccurredAt = &t
	if a.Spool == nil {
		log.Error("keyfleet cannot take the record of the sign-in and there is no spool: it is in syslog only", "outcome", d.Outcome, "reason", d.Reason, "err", why)
		return
	}
	if err := a.Spool.Put(d); err != nil {
		log.Error("keyfleet cannot take the record of the sign-in and it cannot be kept: it is in syslog only", "outcome", d.Outcome, "reason", d.Reason, "err", why, "spool_err", err)
		return
	}
	log.Warn("keyfleet cannot take the record of the sign-in now; kept to send with a later sign-in", "outcome", d.Outcome, "reason", d.Reason, "record_id", d.ID, "err", why)
}

// send sends one decision within the timeout. keyfleetd's refusal of it
// as bad input is *malformed: sending it again cannot help.
func (a *Authenticator) send(ctx context.Context, d api.LoginDecision) error {
	ctx, cancel := context.WithTimeout(ctx, a.Config.Timeout)
	defer cancel()
	_, err := a.Client.RecordLoginDecision(ctx, d)
	if client.IsProblem(err, client.SlugValidationFailed, client.SlugInvalidJSON, client.SlugUnknownField, client.SlugBadRequest) {
		return &malformed{err}
	}
	return err
}

// flush sends decisions kept while keyfleetd could not take them, now
// that it answers: at most spoolFlushMax, oldest first, within the
// timeout.
func (a *Authenticator) flush(ctx context.Context, log *slog.Logger) {
	if a.Spool == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, a.Config.Timeout)
	defer cancel()
	n, err := a.Spool.Flush(ctx, spoolFlushMax, a.send, func(name string, err error) {
		log.Error("dropped a kept sign-in record keyfleet refuses", "file", name, "err", err)
	})
	if n > 0 {
		log.Info("sent sign-in records kept while keyfleet could not take them", "count", n)
	}
	if err != nil {
		log.Warn("sending kept sign-in records", "err", err)
	}
}
