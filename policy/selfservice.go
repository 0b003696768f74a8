package policy

import "slices"

// Self-service sign-in without a security key. The dashboard takes
// security keys only; a person who holds none may sign in to their own
// self-service pages with an authenticator app's code, or a push approved
// on their companion, and a second check that the document names, each
// way on its own:
//
//	self_service:
//	  app_sign_in: [recovery_code]
//	  push_sign_in: [recovery_code]
//
// Absent, that way is off. The checks a document may name are
// SecondChecks; each listed one is a way in, so adding one weakens the
// policy (Diff) and needs a second approver.

// SecondCheckRecoveryCode is one of the person's unused recovery codes,
// used up by the sign-in.
const SecondCheckRecoveryCode = "recovery_code"

// SecondChecks are the second checks app sign-in can ask for.
var SecondChecks = []string{SecondCheckRecoveryCode}

// SelfService holds the document's self-service settings.
type SelfService struct {
	// AppSignIn lists the second checks that, with an authenticator
	// app's code, sign a person without a security key in to their own
	// pages; nil: app sign-in is off.
	AppSignIn []string
	// PushSignIn lists the second checks that, with a push the person
	// approves on their companion (number matching), sign a person
	// without a security key in to their own pages; nil: push sign-in is
	// off.
	PushSignIn []string
}

// AppSignInChecks returns the second checks the document accepts for app
// sign-in to self-service; nil when app sign-in is off (or doc is nil).
func AppSignInChecks(doc *Document) []string {
	if doc == nil {
		return nil
	}
	return slices.Clone(doc.SelfService.AppSignIn)
}

// PushSignInChecks returns the second checks the document accepts for
// push sign-in to self-service; nil when push sign-in is off (or doc is
// nil).
func PushSignInChecks(doc *Document) []string {
	if doc == nil {
		return nil
	}
	return slices.Clone(doc.SelfService.PushSignIn)
}

// selfService compares the sign-in checks: each check is a way in, so one
// added is weaker and one removed stricter.
func (c *changes) selfService(o, n SelfService) {
	c.signInChecks("self_service.app_sign_in", "an app code", o.AppSignIn, n.AppSignIn)
	c.signInChecks("self_service.push_sign_in", "a push approved on their companion", o.PushSignIn, n.PushSignIn)
}

func (c *changes) signInChecks(field, first string, o, n []string) {
	switch {
	case o == nil && n != nil:
		c.add("", field, Weaker, "off", joinList(n),
			"%s turned on: people without a security key may sign in to their own pages with %s and %s", field, first, orList(n))
	case o != nil && n == nil:
		c.add("", field, Stricter, joinList(o), "off", "%s turned off", field)
	default:
		if added := minus(n, o); len(added) > 0 {
			c.add("", field, Weaker, joinList(o), joinList(n), "%s also accepts %s", field, joinList(added))
		}
		if removed := minus(o, n); len(removed) > 0 {
			c.add("", field, Stricter, joinList(o), joinList(n), "%s no longer accepts %s", field, joinList(removed))
		}
	}
}
