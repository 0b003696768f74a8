package pam

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/api/client"
)

// pushKind is the kind of push factors (keyfleet-plugin-push): the kind
// the helper asks for out of band, on the user's companion.
const pushKind = "push"

// choice is one way a user may answer: a factor that takes a code, of
// the verification begun for codes, or a push factor (a verification of
// its own is begun only when the user picks it, so no push goes out
// unasked).
type choice struct {
	code api.VerificationFactor // set (FactorID) for a code
	push api.Factor             // set (ID) for a push
}

func (c choice) isPush() bool { return c.push.ID != "" }

func (c choice) String() string {
	if c.isPush() {
		return describe(api.VerificationFactor{Kind: c.push.Kind, Label: c.push.Label})
	}
	return describe(c.code)
}

// verify asks for one of the user's factors that can answer here: a code
// (TOTP, HOTP) or a push. One code and one push are offered in one
// prompt (a code, or Enter for the push); more are picked from a list.
func (a *Authenticator) verify(ctx context.Context, log *slog.Logger, in Login, st api.MFAStatus) Result {
	pushes := a.pushFactors(st)
	v, codes, err := a.beginCodes(ctx, in, st)
	if err != nil && (len(pushes) == 0 || !client.IsProblem(err, client.SlugNoUsableFactor, client.SlugPolicyViolation)) {
		return a.refused(ctx, log, in, st, err)
	}
	var cs []choice
	for _, f := range codes {
		cs = append(cs, choice{code: f})
	}
	for _, f := range pushes {
		cs = append(cs, choice{push: f})
	}
	var c choice
	switch {
	case len(cs) == 0:
		return a.cannotAnswerHere(ctx, log, in, st)
	case len(cs) == 1:
		c = cs[0]
	case len(codes) == 1 && len(pushes) == 1:
		return a.codeOrPush(ctx, log, in, st, v, codes[0], pushes[0])
	default:
		if c, err = a.pick(cs); err != nil {
			return a.decline(ctx, log, in, "bad_choice")
		}
	}
	if c.isPush() {
		return a.push(ctx, log, in, st, c.push)
	}
	code, err := a.Conv.Prompt(false, "keyfleet code from "+c.String()+": ")
	if err != nil {
		return a.decline(ctx, log, in, "no_answer")
	}
	return a.checkCode(ctx, log, in, st, v, c.code, code)
}

// pushFactors are the user's active push factors that are not locked,
// when the policy accepts push for this user.
func (a *Authenticator) pushFactors(st api.MFAStatus) []api.Factor {
	if !slices.Contains(st.AllowedKinds, pushKind) {
		return nil
	}
	now := a.now()
	return slices.DeleteFunc(slices.Clone(st.ActiveFactors), func(f api.Factor) bool {
		return f.Kind != pushKind || (f.LockedUntil != nil && now.Before(*f.LockedUntil))
	})
}

// beginCodes begins a verification of the user's factors other than
// push (so that beginning sends no push) and returns those that take a
// code. A user who has only push factors begins nothing here.
func (a *Authenticator) beginCodes(ctx context.Context, in Login, st api.MFAStatus) (api.Verification, []api.VerificationFactor, error) {
	var kinds []string
	for _, f := range st.ActiveFactors {
		if f.Kind != pushKind && !slices.Contains(kinds, f.Kind) {
			kinds = append(kinds, f.Kind)
		}
	}
	if len(kinds) == 0 {
		return api.Verification{}, nil, nil
	}
	ctx, cancel := context.WithTimeout(ctx, a.Config.Timeout)
	defer cancel()
	v, err := a.Client.BeginVerify(ctx, api.BeginVerify{User: in.User, Kinds: kinds})
	if err != nil {
		return v, nil, err
	}
	codes := slices.DeleteFunc(slices.Clone(v.Factors), func(f api.VerificationFactor) bool { return !slices.Equal(f.Inputs, []string{"code"}) })
	return v, codes, nil
}

// codeOrPush offers a user with one code factor and one push factor both
// in one prompt: a code checks the code, Enter alone sends the push.
func (a *Authenticator) codeOrPush(ctx context.Context, log *slog.Logger, in Login, st api.MFAStatus, v api.Verification, code api.VerificationFactor, push api.Factor) Result {
	got, err := a.Conv.Prompt(false, "keyfleet code from "+describe(code)+", or press Enter to send a push to "+choice{push: push}.String()+": ")
	switch {
	case err != nil:
		return a.decline(ctx, log, in, "no_answer")
	case strings.TrimSpace(got) == "":
		return a.push(ctx, log, in, st, push)
	}
	return a.checkCode(ctx, log, in, st, v, code, got)
}

// checkCode finishes the verification v with the code typed for f.
func (a *Authenticator) checkCode(ctx context.Context, log *slog.Logger, in Login, st api.MFAStatus, v api.Verification, f api.VerificationFactor, code string) Result {
	vctx, cancel := context.WithTimeout(ctx, a.Config.Timeout)
	defer cancel()
	body, _ := json.Marshal(map[string]string{"code": strings.TrimSpace(code)})
	res, err := a.Client.FinishVerify(vctx, api.FinishVerify{ID: v.ID, FactorID: f.FactorID, Response: body})
	switch {
	case err != nil:
		return a.refused(ctx, log, in, st, err)
	case !res.OK:
		log.Info("wrong code; refused", "factor_id", f.FactorID)
		a.Conv.Error("Sign-in refused: wrong code.")
		return AuthErr
	}
	log.Info("second factor verified", "factor_id", f.FactorID, "kind", f.Kind)
	return Success
}

// cannotAnswerHere refuses a user none of whose factors can answer in a
// PAM conversation: security keys and PIV keys (a terminal or an SSH
// session cannot reach the key for WebAuthn), or push factors the policy
// does not accept or that are locked.
func (a *Authenticator) cannotAnswerHere(ctx context.Context, log *slog.Logger, in Login, st api.MFAStatus) Result {
	var kinds []string
	for _, f := range st.ActiveFactors {
		if !slices.Contains(kinds, f.Kind) {
			kinds = append(kinds, f.Kind)
		}
	}
	log.Info("no factor that can answer here; refused", "kinds", strings.Join(kinds, ","))
	a.record(ctx, log, in, api.LoginRefused, "no_factor_usable_here")
	msg := "Sign-in refused: your factors (" + strings.Join(kinds, ", ") + ") cannot answer here."
	if slices.ContainsFunc(kinds, func(k string) bool { return k != pushKind }) {
		msg += " A security key cannot be asked from a terminal or an SSH session (it answers a browser, through WebAuthn)."
	}
	if slices.Contains(kinds, pushKind) && !slices.Contains(st.AllowedKinds, pushKind) {
		msg += " The policy does not accept push approvals for you."
	}
	a.Conv.Error(msg + " Add an authenticator app (TOTP) or push approvals on your phone in keyfleet's self-service pages (My keys), then sign in again; or ask the helpdesk.")
	return AuthErr
}

// decline refuses a sign-in the user did not go on with (no answer, a
// choice that is not on the list).
func (a *Authenticator) decline(ctx context.Context, log *slog.Logger, in Login, reason string) Result {
	log.Info("the user did not answer; refused", "reason", reason)
	a.record(ctx, log, in, api.LoginRefused, reason)
	return AuthErr
}

// pick asks which factor answers when there are several.
func (a *Authenticator) pick(cs []choice) (choice, error) {
	var b strings.Builder
	b.WriteString("keyfleet: choose a factor:")
	for i, c := range cs {
		fmt.Fprintf(&b, " %d) %s", i+1, c)
	}
	b.WriteString(". Number: ")
	got, err := a.Conv.Prompt(true, b.String())
	if err != nil {
		return choice{}, err
	}
	n, err := strconv.Atoi(strings.TrimSpace(got))
	if err != nil || n < 1 || n > len(cs) {
		a.Conv.Error(fmt.Sprintf("Sign-in refused: give a number from 1 to %d.", len(cs)))
		return choice{}, errors.New("no such factor")
	}
	return cs[n-1], nil
}
