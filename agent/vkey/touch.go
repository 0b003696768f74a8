package vkey

import "time"

// Touch policies (Yubico PIV extensions) and how long a cached touch lasts.
const (
	touchNever   = 0x01
	touchAlways  = 0x02
	touchCached  = 0x03
	touchCacheOK = 15 * time.Second
)

// waitTouch simulates the touch sensor. It returns 9000, or 6985 when
// nobody touches (deny at once, or after TouchTimeout).
func (c *Card) waitTouch() uint16 {
	c.opts.OnTouch()
	switch c.opts.Touch {
	case TouchDeny:
		return swConditions
	case TouchTimeout:
		time.Sleep(c.opts.TouchTimeout)
		return swConditions
	}
	return swOK
}

// touchFor applies a key's touch policy.
func (c *Card) touchFor(policy byte) uint16 {
	now := c.opts.Now()
	switch policy {
	case touchAlways:
		return c.waitTouch()
	case touchCached:
		if now.Before(c.sess.touchUntil) {
			return swOK
		}
		sw := c.waitTouch()
		if sw == swOK {
			c.sess.touchUntil = now.Add(touchCacheOK)
		}
		return sw
	}
	return swOK
}
