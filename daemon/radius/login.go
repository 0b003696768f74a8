package radius

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2869"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/core"
	"github.com/keyfleet/keyfleet/policy"
)

// login is one Access-Request being decided.
type login struct {
	s      *Server
	ctx    context.Context
	client *client
	user   string
	source string
}

// decide answers an authentic request: Status-Server is answered at
// once (RFC 5997 §4.1); an Access-Request starts a sign-in or, with a
// State, answers a challenge.
func (s *Server) decide(ctx context.Context, c *client, pkt *radius.Packet, source string) answer {
	if pkt.Code == radius.CodeStatusServer {
		return accept("status_server", "")
	}
	l := &login{s: s, ctx: ctx, client: c, user: rfc2865.UserName_GetString(pkt), source: source}
	if strings.TrimSpace(l.user) == "" {
		return l.refuse("no_user_name", msgNoUser)
	}
	switch ok, err := s.users.allow(ctx, l.user, s.now()); {
	case err != nil:
		s.log.Warn("radius: cannot count the attempt in the shared rate limits; refused", "client", c.name, "err", err)
		return reject("unavailable", msgUnavailable)
	case !ok:
		s.refuseSampled(refusal{client: c.name, source: source, user: l.user, reason: "user_rate_limited"})
		return reject("user_rate_limited", msgSlowDown)
	}
	pw, err := rfc2865.UserPassword_LookupString(pkt)
	if err != nil {
		if _, chap := pkt.Lookup(rfc2865.CHAPPassword_Type); chap || pkt.Get(rfc2869.EAPMessage_Type) != nil {
			return l.refuse("not_pap", msgNotPAP)
		}
		return l.refuse("no_password", msgNoPassword)
	}
	if state := rfc2865.State_Get(pkt); state != nil {
		return l.resume(state, pw)
	}
	return l.start(pw)
}

// start begins a sign-in: the first factor, if configured, then the code.
func (l *login) start(pw string) answer {
	firstOK, code := false, pw
	if l.s.first != nil {
		password, c := l.s.split(pw)
		if err := l.s.first.Check(l.ctx, l.user, password); err != nil {
			if errors.Is(err, ErrBadPassword) {
				return l.refuse("first_factor_failed", msgWrongPassword)
			}
			l.s.log.Error("radius: checking the first factor", "err", err, "user", l.user)
			return l.refuse("directory_unavailable", msgDirectoryDown)
		}
		firstOK, code = true, c
	}
	if code == "" || len(l.s.codeKinds) == 0 {
		return l.offer(firstOK)
	}
	return l.check(api.CheckVerify{User: l.user, Kinds: l.s.codeKinds, Response: codeResponse(code)}, firstOK)
}

// split cuts password+code: at the last separator when one is set, else
// before the last CodeLength characters when they are digits. Without a
// code the whole is the password (the code is then asked for).
func (s *Server) split(pw string) (password, code string) {
	if sep := s.cfg.Separator; sep != "" {
		if i := strings.LastIndex(pw, sep); i >= 0 {
			return pw[:i], pw[i+len(sep):]
		}
		return pw, ""
	}
	n := s.cfg.CodeLength
	if len(pw) > n && strings.Trim(pw[len(pw)-n:], "0123456789") == "" {
		return pw[:len(pw)-n], pw[len(pw)-n:]
	}
	return pw, ""
}

func codeResponse(code string) json.RawMessage {
	b, _ := json.Marshal(map[string]string{"code": strings.TrimSpace(code)})
	return b
}

// check verifies a code through core, which applies lockouts and replay
// protection and audits the outcome.
func (l *login) check(in api.CheckVerify, firstOK bool) answer {
	res, err := l.s.svc.CheckVerify(l.ctx, l.s.principal, in)
	var ve *core.ValidationError
	switch {
	case err == nil && res.OK:
		return accept("verified", "")
	case err == nil:
		return reject("wrong_code", msgWrongCode(l.s.first != nil))
	case errors.As(err, &ve) && ve.Field == "factor_id":
		return l.offer(firstOK) // several factors take a code: pick one
	}
	return l.explain(err, firstOK)
}

// explain answers a sign-in core refused before checking any answer.
func (l *login) explain(err error, firstOK bool) answer {
	switch {
	case errors.Is(err, core.ErrNotFound):
		return l.refuse("unknown_user", msgWrongCode(l.s.first != nil))
	case errors.Is(err, core.ErrIllegalTransition):
		return l.refuse("user_disabled", msgWrongCode(l.s.first != nil))
	case errors.Is(err, core.ErrNoUsableFactor), errors.Is(err, core.ErrLocked), errors.Is(err, core.ErrPolicyViolation):
		return l.offer(firstOK) // the user's state says why
	}
	l.s.log.Error("radius: verifying", "err", err, "user", l.user)
	return reject("unavailable", msgUnavailable)
}

// offer looks at the user's factors and asks for one: a code, a pick
// from several, or an out-of-band answer; or explains why none can.
func (l *login) offer(firstOK bool) answer {
	st, err := l.s.svc.LoginState(l.ctx, l.s.principal, l.user)
	switch {
	case errors.Is(err, core.ErrNotFound):
		return l.refuse("unknown_user", msgWrongCode(l.s.first != nil))
	case err != nil:
		l.s.log.Error("radius: reading the user's factors", "err", err, "user", l.user)
		return reject("unavailable", msgUnavailable)
	case !st.Active:
		return l.refuse("user_disabled", msgWrongCode(l.s.first != nil))
	}
	now := l.s.now()
	if until := st.LockedUntil; until != nil && now.Before(*until) {
		return l.refuse("locked", msgLocked(*until))
	}
	usable := l.usable(st, now)
	switch len(usable) {
	case 0:
		return l.noFactor(st, firstOK, now)
	case 1:
		return l.ask(usable[0], firstOK)
	}
	return l.pick(usable, firstOK)
}

// usable are the unlocked factors this listener can ask for.
func (l *login) usable(st core.LoginState, now time.Time) []core.LoginFactor {
	var out []core.LoginFactor
	for _, f := range st.Factors {
		_, oob := l.s.oob[f.Kind]
		code := f.TakesCode() && slices.Contains(l.s.codeKinds, f.Kind)
		if (oob || code) && (f.LockedUntil == nil || !now.Before(*f.LockedUntil)) {
			out = append(out, f)
		}
	}
	return out
}

// noFactor explains why a user has nothing to answer with, or lets them
// in when a first factor was checked and the policy does not ask for a
// second one yet.
func (l *login) noFactor(st core.LoginState, firstOK bool, now time.Time) answer {
	var kinds []string
	for _, f := range st.Factors {
		if f.LockedUntil != nil && now.Before(*f.LockedUntil) {
			return l.refuse("locked", msgLocked(*f.LockedUntil))
		}
		kinds = append(kinds, f.Kind)
	}
	switch {
	case len(kinds) > 0:
		return l.refuse("no_code_factor", msgNoCodeFactor(kinds))
	case len(st.Refused) > 0:
		return l.refuse("policy_refused", msgPolicyRefused(st.Refused, st.Status.AllowedKinds))
	case st.Suspended > 0:
		return l.refuse("factor_suspended", msgSuspended)
	case firstOK && !st.Status.MustEnrol:
		return l.allow("not_required", "")
	case firstOK && st.Status.Status == string(policy.StatusGrace):
		return l.allow("grace", msgGrace(st.Status.GraceUntil)+l.firstLoginPass(firstOK))
	case firstOK:
		return l.refuse("must_enrol", msgMustEnrol+l.firstLoginPass(firstOK))
	}
	return l.refuse("no_factor", msgNoFactor)
}

// firstLoginPass issues a first-login pass when the operator turned them
// on and the first factor was checked, and says how to use it; otherwise
// it says whom to ask.
func (l *login) firstLoginPass(firstOK bool) string {
	fl := l.s.firstLogin
	if !firstOK || fl.PassTTL == 0 {
		return " " + msgAskHelpdesk
	}
	pass, err := l.s.svc.IssueFirstLoginPass(l.ctx, l.s.principal, l.user, fl.PassTTL)
	if err != nil {
		l.s.log.Warn("radius: no first-login pass", "user", l.user, "err", err)
		return " " + msgAskHelpdesk
	}
	return " " + msgUsePass(fl.WelcomeURL, pass.Code, pass.ExpiresAt)
}

// ask challenges for one factor: its code, or its out-of-band answer.
func (l *login) ask(f core.LoginFactor, firstOK bool) answer {
	if oob, ok := l.s.oob[f.Kind]; ok {
		return l.push(oob, f, firstOK)
	}
	ch := Challenge{Stage: StageCode, Factors: []core.LoginFactor{f}, FirstOK: firstOK}
	return l.challenge(ch, "code_asked", msgEnterCode(f))
}

// pick challenges for the number of one of several factors.
func (l *login) pick(fs []core.LoginFactor, firstOK bool) answer {
	return l.challenge(Challenge{Stage: StagePick, Factors: fs, FirstOK: firstOK}, "factor_asked", msgPick(fs))
}

// push starts an out-of-band prompt and challenges until it is answered.
func (l *login) push(oob OutOfBand, f core.LoginFactor, firstOK bool) answer {
	ticket, err := oob.Start(l.ctx, l.s.principal, l.user, f)
	if err != nil {
		l.s.log.Warn("radius: starting an out-of-band prompt", "err", err, "user", l.user, "kind", f.Kind)
		return l.refuse("push_failed", msgPushFailed(f))
	}
	ch := Challenge{Stage: StageWait, Factors: []core.LoginFactor{f}, Ticket: ticket, FirstOK: firstOK}
	return l.challenge(ch, "push_sent", approveMessage(oob, f, ticket))
}

// approveMessage is what a challenge for an out-of-band answer says: the
// prompt's own instructions (the number to pick) when it gives some.
func approveMessage(oob OutOfBand, f core.LoginFactor, ticket string) string {
	if in, ok := oob.(Instructions); ok {
		if msg := in.Instructions(ticket); msg != "" {
			return msg
		}
	}
	return msgApprove(f)
}

// challenge keeps ch, audits the challenge and answers Access-Challenge.
func (l *login) challenge(ch Challenge, reason, msg string) answer {
	ch.Client, ch.User, ch.Node = l.client.name, normalName(l.user), l.s.boot
	ch.Expires = l.s.now().Add(l.s.cfg.ChallengeTTL.Duration)
	state, ok := l.keep(ch)
	if !ok {
		return reject("unavailable", msgUnavailable)
	}
	if err := l.record(core.LoginChallenged, reason); err != nil {
		l.s.open.Take(l.ctx, state, ch.Client, ch.User, l.s.now())
		return reject("unavailable", msgUnavailable)
	}
	return answer{code: radius.CodeAccessChallenge, msg: msg, state: state, reason: reason}
}

// keep files ch under a new random State.
func (l *login) keep(ch Challenge) ([]byte, bool) {
	state := make([]byte, StateLen)
	if _, err := io.ReadFull(l.s.rand, state); err != nil {
		l.s.log.Error("radius: drawing a State", "err", err)
		return nil, false
	}
	if err := l.s.open.Put(l.ctx, state, ch); err != nil {
		l.s.log.Error("radius: keeping a challenge", "err", err, "user", l.user)
		return nil, false
	}
	return state, true
}

// resume takes the answer to a challenge.
func (l *login) resume(state []byte, pw string) answer {
	ch, err := l.s.open.Take(l.ctx, state, l.client.name, normalName(l.user), l.s.now())
	switch {
	case errors.Is(err, ErrNoChallenge):
		return l.refuse("stale_challenge", msgStale)
	case err != nil:
		l.s.log.Error("radius: taking a challenge", "err", err, "user", l.user)
		return reject("unavailable", msgUnavailable)
	}
	switch ch.Stage {
	case StagePick:
		n, err := strconv.Atoi(strings.TrimSpace(pw))
		if err != nil || n < 1 || n > len(ch.Factors) {
			return l.refuse("bad_choice", msgBadChoice(len(ch.Factors)))
		}
		return l.ask(ch.Factors[n-1], ch.FirstOK)
	case StageCode:
		return l.check(api.CheckVerify{User: l.user, FactorID: ch.Factors[0].ID, Response: codeResponse(pw)}, ch.FirstOK)
	}
	return l.poll(ch)
}

// poll asks an out-of-band prompt for its answer. When pushes are shared
// by every keyfleetd on the database (Options.SharedPushes), any listener
// polls it; otherwise only the listener that started the prompt can (a
// push waits in the memory of the keyfleetd that sent it): a wait
// answered to another keyfleetd, or to this one after a restart, is
// refused with the advice to sign in again.
func (l *login) poll(ch Challenge) answer {
	f := ch.Factors[0]
	oob, ok := l.s.oob[f.Kind]
	switch {
	case !ok:
		return l.refuse("stale_challenge", msgStale)
	case ch.Node != l.s.boot && !l.s.sharedPush:
		return l.refuse("push_elsewhere", msgPushElsewhere)
	}
	got, err := oob.Poll(l.ctx, l.s.principal, ch.Ticket)
	switch {
	case err != nil:
		l.s.log.Warn("radius: polling an out-of-band prompt", "err", err, "user", l.user, "kind", f.Kind)
		return l.refuse("push_failed", msgPushFailed(f))
	case got == Approved:
		return accept("verified", "")
	case got == Denied:
		return reject("push_denied", msgPushDenied(f))
	}
	if !l.s.now().Before(ch.Expires) {
		return l.refuse("push_expired", msgStale)
	}
	state, ok := l.keep(ch) // an out-of-band wait keeps its first expiry
	if !ok {
		return reject("unavailable", msgUnavailable)
	}
	return answer{code: radius.CodeAccessChallenge, msg: approveMessage(oob, f, ch.Ticket), state: state, reason: "push_pending"}
}

// refuse audits a refusal and answers Access-Reject with msg.
func (l *login) refuse(reason, msg string) answer {
	if err := l.record(core.LoginRefused, reason); err != nil {
		l.s.log.Error("radius: auditing a refusal", "err", err, "reason", reason)
	}
	return reject(reason, msg)
}

// allow audits a sign-in let through without a factor and accepts it;
// when the record cannot be written, the sign-in is refused instead.
func (l *login) allow(reason, msg string) answer {
	if err := l.record(core.LoginAllowed, reason); err != nil {
		l.s.log.Error("radius: auditing a sign-in without a factor", "err", err, "reason", reason)
		return reject("unavailable", msgUnavailable)
	}
	return accept(reason, msg)
}

func (l *login) record(outcome, reason string) error {
	return l.s.svc.RecordLogin(l.ctx, l.s.principal, core.LoginEvent{User: l.user, Outcome: outcome, Reason: reason})
}
