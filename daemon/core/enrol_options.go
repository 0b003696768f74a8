package core

import (
	"encoding/json"
	"regexp"
	"slices"
)

// Limits on the options a creator passes with an enrolment.
const (
	maxEnrolOptions     = 16
	maxEnrolOptionValue = 100
)

var enrolOptionKeyRE = regexp.MustCompile(`^[a-z][a-z0-9_]{0,31}$`)

// reservedEnrolOptions are computed by keyfleetd, never taken from a
// request: a creator who could set them could let a key register twice.
var reservedEnrolOptions = []string{"exclude_credentials"}

// checkRequestedOptions refuses options that are malformed, too many, too
// long or reserved. Errors wrap ErrInvalid.
func checkRequestedOptions(opts map[string]string) error {
	if len(opts) > maxEnrolOptions {
		return invalid("options", "%d options given; at most %d", len(opts), maxEnrolOptions)
	}
	for k, v := range opts {
		switch {
		case !enrolOptionKeyRE.MatchString(k):
			return invalid("options", "%q is not an option name (a-z, 0-9 and _, starting with a letter, up to 32)", k)
		case slices.Contains(reservedEnrolOptions, k):
			return invalid("options", "%s is set by keyfleetd itself and cannot be given", k)
		case v == "" || len(v) > maxEnrolOptionValue:
			return invalid("options", "option %s must be 1 to %d characters", k, maxEnrolOptionValue)
		}
	}
	return nil
}

// totpParams are the public parameters a TOTP factor keeps that the
// policy judges.
var totpParams = []string{"algorithm", "digits", "period"}

// pushParams are those of a push factor.
var pushParams = []string{"number_matching"}

// factorParams reads the parameters the policy judges from a factor's
// public material: a TOTP factor's algorithm, digits and period, a push
// factor's number matching; nil for other kinds or public material that
// does not say them.
func factorParams(kind string, public []byte) map[string]string {
	keys := map[string][]string{"totp": totpParams, "push": pushParams}[kind]
	if keys == nil || len(public) == 0 {
		return nil
	}
	var pub map[string]any
	if json.Unmarshal(public, &pub) != nil {
		return nil
	}
	out := map[string]string{}
	for _, k := range keys {
		if v, ok := pub[k].(string); ok {
			out[k] = v
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}
