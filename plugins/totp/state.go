package totp

import (
	"crypto/subtle"
	"encoding/base32"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"

	"github.com/keyfleet/keyfleet/plugins/sdk"
)

// algorithms maps the names policy and state use to pquerna/otp's, with the
// seed size generated for each (RFC 6238 §5.1: a key of the hash's
// output length; Appendix A uses 20, 32 and 64 bytes).
var algorithms = map[string]struct {
	alg      otp.Algorithm
	seedSize uint
}{
	"SHA1":   {otp.AlgorithmSHA1, 20},
	"SHA256": {otp.AlgorithmSHA256, 32},
	"SHA512": {otp.AlgorithmSHA512, 64},
}

const (
	minPeriod, maxPeriod = 15, 120
	// minSeedBytes refuses a state whose seed is too short to be secret
	// (RFC 4226 §4 R6: at least 128 bits).
	minSeedBytes = 16
)

var seedEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// enrolOptions are the options a TOTP enrolment takes.
var enrolOptions = []string{"algorithm", "digits", "period", "issuer"}

// parseOptions reads policy's options into the parameters of a new state.
// Returns sdk.ErrInvalidRequest for an option it does not know or a value
// it does not accept.
func parseOptions(opts map[string]string) (state, error) {
	st := state{Algorithm: "SHA1", Digits: 6, Period: 30}
	for k := range opts {
		if !slices.Contains(enrolOptions, k) {
			return state{}, fmt.Errorf("%w: totp has no option %q; its options are %s", sdk.ErrInvalidRequest, k, strings.Join(enrolOptions, ", "))
		}
	}
	if v, ok := opts["algorithm"]; ok {
		st.Algorithm = strings.ToUpper(strings.ReplaceAll(v, "-", ""))
	}
	var err error
	if v, ok := opts["digits"]; ok {
		if st.Digits, err = strconv.Atoi(v); err != nil {
			return state{}, fmt.Errorf("%w: totp option digits %q is not a number", sdk.ErrInvalidRequest, v)
		}
	}
	if v, ok := opts["period"]; ok {
		if st.Period, err = strconv.Atoi(v); err != nil {
			return state{}, fmt.Errorf("%w: totp option period %q is not a number of seconds", sdk.ErrInvalidRequest, v)
		}
	}
	if err := st.checkParams(); err != nil {
		return state{}, fmt.Errorf("%w: totp options: %v", sdk.ErrInvalidRequest, err)
	}
	return st, nil
}

// checkParams checks everything but the seed.
func (s state) checkParams() error {
	if _, ok := algorithms[s.Algorithm]; !ok {
		return fmt.Errorf("algorithm %q is not SHA1, SHA256 or SHA512", s.Algorithm)
	}
	if s.Digits != 6 && s.Digits != 8 {
		return fmt.Errorf("digits %d is not 6 or 8", s.Digits)
	}
	if s.Period < minPeriod || s.Period > maxPeriod {
		return fmt.Errorf("period %ds is not between %ds and %ds", s.Period, minPeriod, maxPeriod)
	}
	return nil
}

// check checks the whole state.
func (s state) check() error {
	if err := s.checkParams(); err != nil {
		return err
	}
	seed, err := seedEncoding.DecodeString(strings.TrimRight(strings.ToUpper(s.Seed), "="))
	switch {
	case err != nil:
		return fmt.Errorf("seed is not base32")
	case len(seed) < minSeedBytes:
		return fmt.Errorf("seed is %d bytes, fewer than %d", len(seed), minSeedBytes)
	}
	return nil
}

// decodeState reads and checks a state. Returns sdk.ErrInvalidState.
func decodeState(b []byte) (state, error) {
	var s state
	if err := json.Unmarshal(b, &s); err != nil {
		return state{}, fmt.Errorf("%w: totp state is not readable", sdk.ErrInvalidState)
	}
	if err := s.check(); err != nil {
		return state{}, fmt.Errorf("%w: totp state: %v", sdk.ErrInvalidState, err)
	}
	return s, nil
}

// decodeCode reads {"code": "123456"}; spaces in the code are dropped.
// Returns sdk.ErrInvalidRequest when the response is not such JSON.
func decodeCode(b []byte) (string, error) {
	var r codeResponse
	if err := json.Unmarshal(b, &r); err != nil {
		return "", fmt.Errorf("%w: response is not JSON like {\"code\": \"123456\"}", sdk.ErrInvalidRequest)
	}
	code := strings.ReplaceAll(r.Code, " ", "")
	if code == "" {
		return "", fmt.Errorf("%w: response has no code", sdk.ErrInvalidRequest)
	}
	return code, nil
}

func (s state) algorithm() otp.Algorithm { return algorithms[s.Algorithm].alg }
func (s state) seedSize() uint           { return algorithms[s.Algorithm].seedSize }

// public is what may be shown about the factor: its parameters.
func (s state) public() map[string]string {
	return map[string]string{"algorithm": s.Algorithm, "digits": strconv.Itoa(s.Digits), "period": strconv.Itoa(s.Period)}
}

// code is the code of time step step (RFC 6238 §4.2: T = floor((now - T0) / X), T0 = 0).
func (s state) code(step uint64) (string, error) {
	return hotp.GenerateCodeCustom(s.Seed, step, hotp.ValidateOpts{Digits: otp.Digits(s.Digits), Algorithm: s.algorithm()})
}

// match is the outcome of comparing a code with the window around now.
type match struct {
	ok     bool   // the code matches a step after Last
	replay bool   // the code matches only steps already accepted
	step   uint64 // the matched step when ok
}

// match compares code with the codes of the steps now-1, now and now+1,
// each in constant time and all of them whatever the outcome.
func (s state) match(code string, now time.Time) match {
	if now.Unix() < 0 || len(code) != s.Digits {
		return match{}
	}
	cur := uint64(now.Unix()) / uint64(s.Period)
	var m match
	for _, step := range []uint64{cur - 1, cur, cur + 1} {
		if step > cur+1 { // cur was 0: there is no step before it
			continue
		}
		want, err := s.code(step)
		if err != nil || subtle.ConstantTimeCompare([]byte(want), []byte(code)) != 1 {
			continue
		}
		if step > s.Last && !m.ok {
			m = match{ok: true, step: step}
		} else if step <= s.Last {
			m.replay = !m.ok
		}
	}
	return m
}
