package scim

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/keyfleet/keyfleet/daemon/core"
)

// SCIM errors (RFC 7644 §3.12): a status, a scimType where the RFC names
// one, and a detail that says what was wrong and what to send instead.
// Every error this package answers goes through writeError: the one
// mapping from errors to SCIM error bodies (the /v1 API's problem+json
// mapping is daemon/httpapi/errors.go; SCIM clients expect this shape).

// scimTypes of RFC 7644 Table 9.
const (
	typeInvalidFilter = "invalidFilter"
	typeTooMany       = "tooMany"
	typeUniqueness    = "uniqueness"
	typeMutability    = "mutability"
	typeInvalidSyntax = "invalidSyntax"
	typeInvalidPath   = "invalidPath"
	typeNoTarget      = "noTarget"
	typeInvalidValue  = "invalidValue"
	typeInvalidVers   = "invalidVers"
)

// Error is a SCIM error with its status and scimType.
type Error struct {
	Status   int
	ScimType string
	Detail   string
}

func (e *Error) Error() string { return e.Detail }

func badRequest(scimType, format string, a ...any) error {
	return &Error{Status: http.StatusBadRequest, ScimType: scimType, Detail: fmt.Sprintf(format, a...)}
}

// errPrecondition: the resource changed since the version the client
// named (If-Match).
var errPrecondition = &Error{Status: http.StatusPreconditionFailed, ScimType: typeInvalidVers,
	Detail: "the resource changed since the version in If-Match; GET it again and retry with its ETag"}

// errorBody is the JSON of a SCIM error.
type errorBody struct {
	Schemas  []string `json:"schemas"`
	Status   string   `json:"status"`
	ScimType string   `json:"scimType,omitempty"`
	Detail   string   `json:"detail"`
}

// toError maps any error to the SCIM error to answer.
func toError(err error) *Error {
	var se *Error
	var ve *core.ValidationError
	switch {
	case errors.As(err, &se):
		return se
	case errors.As(err, &ve):
		return &Error{Status: http.StatusBadRequest, ScimType: typeInvalidValue, Detail: ve.Error()}
	case errors.Is(err, core.ErrNotFound):
		return &Error{Status: http.StatusNotFound, Detail: "no such resource: " + err.Error()}
	case errors.Is(err, core.ErrAlreadyExists):
		return &Error{Status: http.StatusConflict, ScimType: typeUniqueness, Detail: err.Error()}
	case errors.Is(err, core.ErrUnauthenticated), errors.Is(err, core.ErrTokenExpired), errors.Is(err, core.ErrTokenRevoked):
		return &Error{Status: http.StatusUnauthorized, Detail: err.Error()}
	case errors.Is(err, core.ErrForbidden):
		return &Error{Status: http.StatusForbidden, Detail: err.Error()}
	case errors.Is(err, core.ErrIllegalTransition), errors.Is(err, core.ErrConflict):
		return &Error{Status: http.StatusConflict, Detail: err.Error()}
	case errors.Is(err, core.ErrUnavailable):
		return &Error{Status: http.StatusServiceUnavailable, Detail: "keyfleet cannot take changes now; retry later"}
	}
	return &Error{Status: http.StatusInternalServerError, Detail: "keyfleet failed to answer; the error is in its log"}
}

// writeError answers err as a SCIM error.
func writeError(w http.ResponseWriter, log *slog.Logger, r *http.Request, err error) {
	e := toError(err)
	if e.Status >= 500 {
		log.Error("scim request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	if e.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="keyfleet-scim"`)
	}
	writeJSON(w, e.Status, errorBody{Schemas: []string{schemaError}, Status: strconv.Itoa(e.Status), ScimType: e.ScimType, Detail: e.Detail})
}

// writeJSON answers v as application/scim+json.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/scim+json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
}
