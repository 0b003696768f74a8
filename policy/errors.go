package policy

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors. Every error this package returns wraps exactly one of
// them, so callers branch with errors.Is; the typed errors carry the detail.
var (
	// ErrInvalidDocument: a policy document failed to parse or validate.
	// The error is a [*ParseError] listing every problem found.
	ErrInvalidDocument = errors.New("invalid policy document")
	// ErrRequirement: a factor fails a requirement of the policy at
	// enrolment, or its kind is not acceptable at verification. The error
	// is a [*RequirementError].
	ErrRequirement = errors.New("policy requirement not met")
	// ErrLastFactor: removing the factor would leave a person without an
	// active factor, and no replacement is planned. The error is a
	// [*RemovalError].
	ErrLastFactor = errors.New("last active factor")
	// ErrUnknownFactor: the factor to remove is not one of the user's.
	ErrUnknownFactor = errors.New("unknown factor")
)

// Problem is one thing wrong with a policy document.
type Problem struct {
	File   string // as given to Parse
	Line   int    // 1-based; 0 when the problem has no position
	Column int    // 1-based; 0 when unknown
	Field  string // "rules[1].require.min_factors"; empty for the whole document
	Msg    string // what is wrong, in words
}

// String renders "file:line: field: msg".
func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		fmt.Fprintf(&b, ":%d", p.Line)
	}
	b.WriteString(": ")
	if p.Field != "" {
		b.WriteString(p.Field)
		b.WriteString(": ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// ParseError lists every problem found in a document, in document order.
// It unwraps to ErrInvalidDocument.
type ParseError struct {
	Problems []Problem
}

// Error returns the problems, one a line.
func (e *ParseError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// Unwrap returns ErrInvalidDocument.
func (e *ParseError) Unwrap() error { return ErrInvalidDocument }

// RequirementError says why the policy refuses a factor. Reasons holds one
// entry per failed requirement. It unwraps to ErrRequirement.
type RequirementError struct {
	UserID  string
	Kind    string
	Reasons []Reason
	// Rules names the rules that refuse the factor each on its own (set
	// by CheckEnrolment), so that a refusal can say which rule to meet.
	Rules []string
}

// Error joins the reasons' messages.
func (e *RequirementError) Error() string {
	msgs := make([]string, len(e.Reasons))
	for i, r := range e.Reasons {
		msgs[i] = r.Message
	}
	return "policy: " + strings.Join(msgs, "; ")
}

// Unwrap returns ErrRequirement.
func (e *RequirementError) Unwrap() error { return ErrRequirement }

// RemovalError says why a factor may not be removed. It unwraps to
// ErrLastFactor.
type RemovalError struct {
	UserID   string
	FactorID string
	Message  string
}

// Error returns the message.
func (e *RemovalError) Error() string { return "policy: " + e.Message }

// Unwrap returns ErrLastFactor.
func (e *RemovalError) Unwrap() error { return ErrLastFactor }
