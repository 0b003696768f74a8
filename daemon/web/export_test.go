package web

import "time"

// SetPushWait shortens how long a push sign-in's finish waits, for tests
// that look at a push still waiting; it returns the old value.
func SetPushWait(d time.Duration) time.Duration {
	old := pushWait
	pushWait = d
	return old
}
