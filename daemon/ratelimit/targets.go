package ratelimit

import "github.com/keyfleet/keyfleet/api"

// CodeTarget names the target of an attempt with an enrolment code: the
// enrolment the code names (one account's), or "" for text that is not an
// enrolment code. The API and the pages both use it, so one code is
// counted under one name whichever way it is tried.
func CodeTarget(code string) string {
	id, _, ok := api.ParseEnrolmentCode(code)
	if !ok {
		return ""
	}
	return "enrolment " + id
}
