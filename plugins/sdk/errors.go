package sdk

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// How errors cross the wire. The plugin side turns a Factor's error into a
// gRPC status whose code names the sentinel it wraps; the host side turns
// the code back into an error that wraps the same sentinel and carries the
// plugin's message, so errors.Is works across the process boundary.
//
//	ErrInvalidRequest         ⇄ InvalidArgument
//	ErrInvalidState           ⇄ FailedPrecondition
//	ErrUnsupported            ⇄ Unimplemented (also a method the plugin lacks)
//	ErrUnavailable            ⇄ Aborted (the plugin said so)
//	ErrUnavailable            ← Unavailable (the transport failed: the
//	                            plugin died; RemoteError.Code tells which)
//	context.DeadlineExceeded  ⇄ DeadlineExceeded
//	context.Canceled          ⇄ Canceled
//	anything else              → Unknown, an error wrapping no sentinel
var wireCodes = []struct {
	sentinel error
	code     codes.Code
}{
	{ErrInvalidRequest, codes.InvalidArgument},
	{ErrInvalidState, codes.FailedPrecondition},
	{ErrUnsupported, codes.Unimplemented},
	{ErrUnavailable, codes.Aborted},
	{context.DeadlineExceeded, codes.DeadlineExceeded},
	{context.Canceled, codes.Canceled},
}

// toStatus encodes err for the wire.
func toStatus(err error) error {
	for _, w := range wireCodes {
		if errors.Is(err, w.sentinel) {
			return status.Error(w.code, err.Error())
		}
	}
	return status.Error(codes.Unknown, err.Error())
}

// RemoteError is an error that a plugin returned, or a failure of the
// transport to it. It wraps the sdk sentinel (or context error) that its
// gRPC code stands for; Error returns the plugin's message.
type RemoteError struct {
	Code    codes.Code
	Message string
	wrapped error
}

func (e *RemoteError) Error() string { return e.Message }

// Unwrap returns the sentinel, or nil when the code names none.
func (e *RemoteError) Unwrap() error { return e.wrapped }

// fromStatus decodes an error from the wire.
func fromStatus(err error) error {
	st, ok := status.FromError(err)
	if !ok {
		return fmt.Errorf("%w: plugin call: %v", ErrUnavailable, err)
	}
	re := &RemoteError{Code: st.Code(), Message: st.Message()}
	for _, w := range wireCodes {
		if w.code == st.Code() {
			re.wrapped = w.sentinel
		}
	}
	if st.Code() == codes.Unavailable {
		re.wrapped = ErrUnavailable
	}
	if re.wrapped != nil && !strings.Contains(re.Message, re.wrapped.Error()) {
		re.Message = re.wrapped.Error() + ": " + re.Message
	}
	return re
}
