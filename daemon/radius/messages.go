package radius

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/keyfleet/keyfleet/daemon/core"
)

// Reply-Messages: what a VPN or Wi-Fi client shows the person. Each says
// what happened and what to do; none says whether a user name exists
// before the person proved something.
const (
	msgNoUser        = "Sign-in refused: no user name was sent."
	msgNoPassword    = "Sign-in refused: no password or code was sent."
	msgNotPAP        = "Sign-in refused: this server takes the one-time code as a PAP password; set the client or the RADIUS server in front to PAP."
	msgSlowDown      = "Too many sign-in attempts: wait a minute, then try again."
	msgWrongPassword = "Sign-in refused: wrong user name, password or code."
	msgDirectoryDown = "Sign-in failed: the directory cannot be reached to check your password. Try again in a minute; if it goes on, tell IT."
	msgUnavailable   = "Sign-in failed: keyfleet cannot check sign-ins right now. Try again in a minute; if it goes on, tell IT."
	msgSuspended     = "Sign-in refused: your second factor is suspended. Ask the helpdesk to resume it, or to help you enrol another."
	msgMustEnrol     = "Sign-in refused: you must enrol a second factor first."
	msgNoFactor      = "Sign-in refused: no second factor is enrolled for this account, and this sign-in needs one."
	msgAskHelpdesk   = "Ask the helpdesk for an access pass to enrol one."
	msgStale         = "This sign-in prompt expired or was already answered: start again."
	msgPushElsewhere = "This sign-in waits for an approval another keyfleet server sent (or one from before a restart): sign in again."
)

func msgWrongCode(withPassword bool) string {
	if withPassword {
		return msgWrongPassword
	}
	return "Sign-in refused: wrong user name or code."
}

func msgLocked(until time.Time) string {
	return "Too many wrong codes: sign-in is locked until " + clock(until) + ". Wait, or ask the helpdesk to unlock it."
}

func msgNoCodeFactor(kinds []string) string {
	return "Sign-in refused: your factors (" + strings.Join(dedupe(kinds), ", ") +
		") cannot answer here. Enrol an authenticator app (TOTP) for VPN and Wi-Fi sign-in."
}

func msgPolicyRefused(refused, allowed []string) string {
	msg := "Sign-in refused: the policy does not accept your " + strings.Join(dedupe(refused), ", ") + " factor here."
	if len(allowed) > 0 {
		msg += " Enrol one of: " + strings.Join(allowed, ", ") + "."
	}
	return msg
}

func msgGrace(until *time.Time) string {
	if until == nil {
		return "Enrol a second factor soon: it will be required."
	}
	return "Enrol a second factor before " + clock(*until) + ": from then on sign-in needs one."
}

func msgUsePass(welcome, code string, expires time.Time) string {
	where := "keyfleet's welcome page"
	if welcome != "" {
		where = welcome
	}
	return fmt.Sprintf("To enrol, open %s and enter the access pass %s (single use, valid until %s).", where, code, clock(expires))
}

func msgEnterCode(f core.LoginFactor) string { return "Enter the code from " + describe(f) + "." }

func msgPick(fs []core.LoginFactor) string {
	var b strings.Builder
	b.WriteString("Choose how to sign in:")
	for i, f := range fs {
		fmt.Fprintf(&b, " %d = %s;", i+1, describe(f))
	}
	return strings.TrimSuffix(b.String(), ";") + ". Reply with the number."
}

func msgBadChoice(n int) string {
	return fmt.Sprintf("Sign-in refused: the answer was not a number from 1 to %d. Start again.", n)
}

func msgApprove(f core.LoginFactor) string {
	return "Approve the sign-in on " + describe(f) + ", then press Enter."
}

func msgPushFailed(f core.LoginFactor) string {
	return "Sign-in failed: the prompt could not be sent to " + describe(f) + ". Try again, or use another factor."
}

func msgPushDenied(f core.LoginFactor) string {
	return "Sign-in refused: it was denied on " + describe(f) + ". If that was not you, tell IT at once."
}

// describe names a factor for its owner: its label and kind.
func describe(f core.LoginFactor) string {
	if f.Label == "" {
		return "your " + f.Kind + " factor"
	}
	return printable(f.Label) + " (" + f.Kind + ")"
}

// clock writes a time for a person, in UTC.
func clock(t time.Time) string { return t.UTC().Format("15:04 UTC on 2 Jan 2006") }

func dedupe(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return slices.Compact(out)
}
