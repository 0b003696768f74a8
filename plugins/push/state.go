package push

import (
	"crypto/ecdsa"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/keyfleet/keyfleet/plugins/sdk"
)

// Limits of the "timeout" option, in seconds.
const (
	DefaultTimeout = 60
	MinTimeout     = 15
	MaxTimeout     = 300
)

var enrolOptions = []string{"number_matching", "timeout"}

// settings are what the enrolment's options decide.
type settings struct {
	NumberMatching bool `json:"nm"`
	Timeout        int  `json:"timeout"` // seconds
}

func parseOptions(opts map[string]string) (settings, error) {
	st := settings{NumberMatching: true, Timeout: DefaultTimeout}
	for k := range opts {
		if !slices.Contains(enrolOptions, k) {
			return st, fmt.Errorf("%w: push has no option %q; its options are %s", sdk.ErrInvalidRequest, k, strings.Join(enrolOptions, ", "))
		}
	}
	if v, ok := opts["number_matching"]; ok {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return st, fmt.Errorf("%w: push option number_matching %q is not true or false", sdk.ErrInvalidRequest, v)
		}
		st.NumberMatching = b
	}
	if v, ok := opts["timeout"]; ok {
		n, err := strconv.Atoi(strings.TrimSuffix(v, "s"))
		if err != nil || n < MinTimeout || n > MaxTimeout {
			return st, fmt.Errorf("%w: push option timeout %q must be %d to %d seconds", sdk.ErrInvalidRequest, v, MinTimeout, MaxTimeout)
		}
		st.Timeout = n
	}
	return st, nil
}

// enrolState is kept between BeginEnrol and FinishEnrol.
type enrolState struct {
	Nonce string `json:"nonce"`
	settings
}

// state is a push factor's state: its public key and settings. Nothing in
// it is secret, but the host seals it like any state.
type state struct {
	V      int    `json:"v"`
	Key    string `json:"key"`
	Device string `json:"device"`
	settings
	pub *ecdsa.PublicKey
}

func parseState(b []byte) (state, error) {
	var st state
	if len(b) == 0 {
		return st, fmt.Errorf("%w: push: no state", sdk.ErrInvalidState)
	}
	if err := json.Unmarshal(b, &st); err != nil || st.V != 1 || st.Timeout < MinTimeout || st.Timeout > MaxTimeout {
		return st, fmt.Errorf("%w: push: state does not parse", sdk.ErrInvalidState)
	}
	pub, err := ParsePublicKey(st.Key)
	if err != nil {
		return st, fmt.Errorf("%w: push: %v", sdk.ErrInvalidState, err)
	}
	st.pub = pub
	return st, nil
}

// session is kept by the host between BeginVerify and FinishVerify.
type session struct {
	VerificationID string    `json:"vid"`
	FactorID       string    `json:"fid"`
	Number         string    `json:"n,omitempty"`
	At             time.Time `json:"at"`
	Deadline       time.Time `json:"dl"`
}

func parseSession(b []byte) (session, error) {
	var s session
	if len(b) == 0 || json.Unmarshal(b, &s) != nil || s.VerificationID == "" || s.Deadline.IsZero() {
		return s, fmt.Errorf("%w: push: no push was begun for this answer (missing or malformed session)", sdk.ErrInvalidRequest)
	}
	return s, nil
}

// parseAnswer reads a device's answer; a malformed one is
// sdk.ErrInvalidRequest.
func parseAnswer(b []byte) (Answer, error) {
	var a Answer
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&a); err != nil {
		return a, fmt.Errorf("%w: push: the answer is not a JSON object of verification_id, factor_id, number, decision, time, signature", sdk.ErrInvalidRequest)
	}
	if a.VerificationID == "" || a.FactorID == "" || a.Signature == "" || a.Time == 0 ||
		!slices.Contains([]string{Approve, Deny, Report}, a.Decision) {
		return a, fmt.Errorf("%w: push: the answer needs verification_id, factor_id, decision (approve, deny or report), time and signature", sdk.ErrInvalidRequest)
	}
	return a, nil
}
