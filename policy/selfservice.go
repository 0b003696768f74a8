package policy

import "slices"

// Self-service sign-in without a security key. The dashboard takes
// security keys only; a person who holds none (only an authenticator app)
// may sign in to their own self-service pages with the app's code and a
// second check that the document names:
//
//	self_service:
//	  app_sign_in: [recovery_code]
//
// Absent, app sign-in is off. The checks a document may name are
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
}

// AppSignInChecks returns the second checks the document accepts for app
// sign-in to self-service; nil when app sign-in is off (or doc is nil).
func AppSignInChecks(doc *Document) []string {
	if doc == nil {
		return nil
	}
	return slices.Clone(doc.SelfService.AppSignIn)
}

// selfService compares the app sign-in checks: each check is a way in,
// so one added is weaker and one removed stricter.
func (c *changes) selfService(o, n SelfService) {
	const field = "self_service.app_sign_in"
	switch {
	case o.AppSignIn == nil && n.AppSignIn != nil:
		c.add("", field, Weaker, "off", joinList(n.AppSignIn),
			"%s turned on: people without a security key may sign in to their own pages with an app code and %s", field, orList(n.AppSignIn))
	case o.AppSignIn != nil && n.AppSignIn == nil:
		c.add("", field, Stricter, joinList(o.AppSignIn), "off", "%s turned off", field)
	default:
		if added := minus(n.AppSignIn, o.AppSignIn); len(added) > 0 {
			c.add("", field, Weaker, joinList(o.AppSignIn), joinList(n.AppSignIn), "%s also accepts %s", field, joinList(added))
		}
		if removed := minus(o.AppSignIn, n.AppSignIn); len(removed) > 0 {
			c.add("", field, Stricter, joinList(o.AppSignIn), joinList(n.AppSignIn), "%s no longer accepts %s", field, joinList(removed))
		}
	}
}
