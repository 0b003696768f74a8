package policy

import (
	"fmt"
	"strings"
	"time"
)

// Helpers that put decisions into words for people.

func joinList(items []string) string { return strings.Join(items, ", ") }

// orList writes "a", "a or b", "a, b or c".
func orList(items []string) string {
	switch len(items) {
	case 0:
		return ""
	case 1:
		return items[0]
	}
	return strings.Join(items[:len(items)-1], ", ") + " or " + items[len(items)-1]
}

// orNothing is orList, or a plain statement that nothing is allowed.
func orNothing(items []string) string {
	if len(items) == 0 {
		return "nothing (the rules that apply conflict)"
	}
	return orList(items)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, one)
	}
	return fmt.Sprintf("%d %s", n, many)
}

// formatTime writes a date, with the time of day when it is not midnight.
func formatTime(t time.Time) string {
	t = t.UTC()
	if t.Hour() == 0 && t.Minute() == 0 {
		return t.Format("2006-01-02")
	}
	return t.Format("2006-01-02 15:04 UTC")
}

// due says when something is or was due: "by 2026-12-01" or
// "by 2026-11-01, which has passed".
func due(deadline, now time.Time) string {
	if now.Before(deadline) {
		return "by " + formatTime(deadline)
	}
	return "by " + formatTime(deadline) + ", which has passed"
}

func who(u User) string {
	if u.Username != "" {
		return u.Username
	}
	return "user " + u.ID
}

func versionOr(v interface{ String() string }, ok bool) string {
	if !ok {
		return "none"
	}
	return v.String()
}
