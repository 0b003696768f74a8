package push

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/keyfleet/keyfleet/plugins/sdk"
)

// Version is this kind's version, reported by Describe.
const Version = "1.0.0"

// ClockSkew is how far a device's clock may be from the host's: an
// answer signed at a time outside the push's window widened by it is
// refused.
const ClockSkew = 5 * time.Minute

var cryptoRand io.Reader = rand.Reader

// Factor is the push kind. Its zero value is ready to use.
type Factor struct {
	// Rand draws nonces and numbers; nil means crypto/rand.
	Rand io.Reader
}

var _ sdk.Factor = Factor{}

func (f Factor) rand() io.Reader {
	if f.Rand != nil {
		return f.Rand
	}
	return cryptoRand
}

// Describe names the kind "push", answered out of band.
func (Factor) Describe(context.Context) (sdk.Info, error) {
	return sdk.Info{
		Kind: Kind, DisplayName: "Push approval (companion)", Version: Version, OutOfBand: true,
		EnrolInputs: []sdk.Input{
			{Name: "public_key", Description: "the device key's public half, base64url uncompressed P-256 point"},
			{Name: "device_name", Description: "a name for the companion"},
			{Name: "signature", Description: "the device key's signature over the enrolment message"},
		},
		VerifyInputs: []sdk.Input{
			{Name: "verification_id", Description: "the push's verification"}, {Name: "factor_id", Description: "this factor"},
			{Name: "number", Description: "the number picked"}, {Name: "decision", Description: "approve, deny or report"},
			{Name: "time", Description: "the device's time, Unix milliseconds"}, {Name: "signature", Description: "the device key's signature"},
		},
	}, nil
}

// BeginEnrol draws the nonce the companion signs (Params "nonce") and
// returns the settings as Params. Returns sdk.ErrInvalidRequest for
// options it does not accept.
func (f Factor) BeginEnrol(_ context.Context, req sdk.BeginEnrolRequest) (sdk.BeginEnrolResponse, error) {
	set, err := parseOptions(req.Options)
	if err != nil {
		return sdk.BeginEnrolResponse{}, err
	}
	nonce := make([]byte, 32)
	if _, err := io.ReadFull(f.rand(), nonce); err != nil {
		return sdk.BeginEnrolResponse{}, fmt.Errorf("push: drawing a nonce: %w", err)
	}
	es := enrolState{Nonce: base64.RawURLEncoding.EncodeToString(nonce), settings: set}
	st, err := json.Marshal(es)
	if err != nil {
		return sdk.BeginEnrolResponse{}, err
	}
	return sdk.BeginEnrolResponse{State: st, Params: map[string]string{"nonce": es.Nonce,
		"number_matching": strconv.FormatBool(set.NumberMatching), "timeout": strconv.Itoa(set.Timeout)}}, nil
}

// FinishEnrol checks the companion's first signed answer and keeps its
// public key. Returns sdk.ErrInvalidRequest for a malformed response or a
// signature that does not verify, sdk.ErrInvalidState for broken state.
func (Factor) FinishEnrol(_ context.Context, req sdk.FinishEnrolRequest) (sdk.FinishEnrolResponse, error) {
	var es enrolState
	if len(req.State) == 0 || json.Unmarshal(req.State, &es) != nil || es.Nonce == "" {
		return sdk.FinishEnrolResponse{}, fmt.Errorf("%w: push: enrolment state does not parse", sdk.ErrInvalidState)
	}
	var in EnrolResponse
	if err := json.Unmarshal(req.Response, &in); err != nil {
		return sdk.FinishEnrolResponse{}, fmt.Errorf("%w: push: the enrolment response is not a JSON object of public_key, device_name, signature", sdk.ErrInvalidRequest)
	}
	name := strings.TrimSpace(in.DeviceName)
	if name == "" || utf8.RuneCountInString(name) > 64 || strings.ContainsAny(name, "\n\r") {
		return sdk.FinishEnrolResponse{}, fmt.Errorf("%w: push: device_name must be 1 to 64 characters on one line", sdk.ErrInvalidRequest)
	}
	pub, err := ParsePublicKey(in.PublicKey)
	if err != nil {
		return sdk.FinishEnrolResponse{}, fmt.Errorf("%w: push: %v", sdk.ErrInvalidRequest, err)
	}
	if !VerifyB64(pub, EnrolMessage(req.EnrolmentID, es.Nonce, in.PublicKey, in.DeviceName), in.Signature) {
		return sdk.FinishEnrolResponse{}, fmt.Errorf("%w: push: the signature does not verify with the key sent; the companion must sign this enrolment's nonce", sdk.ErrInvalidRequest)
	}
	st, _ := json.Marshal(state{V: 1, Key: in.PublicKey, Device: name, settings: es.settings})
	public, _ := json.Marshal(Public{PublicKey: in.PublicKey, DeviceName: name, NumberMatching: strconv.FormatBool(es.NumberMatching),
		Timeout: strconv.Itoa(es.Timeout), KeyProtection: keyProtection(in.KeyProtection)})
	return sdk.FinishEnrolResponse{State: st, Public: public}, nil
}

// keyProtection keeps what the companion said about its key, when it is
// one of the words keyfleet's companions use.
func keyProtection(s string) string {
	switch s {
	case "non-extractable", "file":
		return s
	}
	return ""
}

// BeginVerify prepares a push: the number for the application, the
// choices and context for the device, the deadline. Returns
// sdk.ErrInvalidState for broken state.
func (f Factor) BeginVerify(_ context.Context, req sdk.BeginVerifyRequest) (sdk.BeginVerifyResponse, error) {
	st, err := parseState(req.State)
	if err != nil {
		return sdk.BeginVerifyResponse{}, err
	}
	vid := req.VerificationID
	if vid == "" { // a host that names no verification: the challenge is fresh for each
		h := sha256.Sum256(req.Challenge)
		vid = "chal_" + base64.RawURLEncoding.EncodeToString(h[:16])
	}
	deadline := req.Now.Add(time.Duration(st.Timeout) * time.Second)
	sess := session{VerificationID: vid, FactorID: req.FactorID, At: req.Now, Deadline: deadline}
	d := Delivery{VerificationID: vid, FactorID: req.FactorID, User: req.User.Username, DisplayName: req.User.DisplayName,
		Application: req.Context.Application, Address: req.Context.Address, Time: req.Now, Deadline: deadline}
	p := Prompt{Device: st.Device, Deadline: deadline, Message: "Approve the sign-in on " + st.Device + "."}
	if st.NumberMatching {
		if d.Choices, sess.Number, err = numbers(f.rand()); err != nil {
			return sdk.BeginVerifyResponse{}, err
		}
		p.Number = sess.Number
		p.Message = "Open keyfleet on " + st.Device + " and pick " + sess.Number + "."
	}
	out := sdk.BeginVerifyResponse{Deadline: deadline}
	out.Session, _ = json.Marshal(sess)
	out.Prompt, _ = json.Marshal(p)
	out.Delivery, _ = json.Marshal(d)
	return out, nil
}

// FinishVerify checks the device's signed answer. A refused answer is OK
// false with a Reason; a bad signature is Suspicious; "this wasn't me"
// is Reported. Returns sdk.ErrInvalidRequest for a malformed answer or
// session, sdk.ErrInvalidState for broken state.
func (Factor) FinishVerify(_ context.Context, req sdk.FinishVerifyRequest) (sdk.FinishVerifyResponse, error) {
	st, err := parseState(req.State)
	if err != nil {
		return sdk.FinishVerifyResponse{}, err
	}
	sess, err := parseSession(req.Session)
	if err != nil {
		return sdk.FinishVerifyResponse{}, err
	}
	a, err := parseAnswer(req.Response)
	if err != nil {
		return sdk.FinishVerifyResponse{}, err
	}
	return judge(st, sess, a, req.Now), nil
}

// judge decides an answer, checks in the order that tells the most
// without trusting anything unsigned.
func judge(st state, sess session, a Answer, now time.Time) sdk.FinishVerifyResponse {
	refuse := func(reason string) sdk.FinishVerifyResponse { return sdk.FinishVerifyResponse{Reason: reason} }
	switch {
	case a.VerificationID != sess.VerificationID || a.FactorID != sess.FactorID:
		return refuse("the answer is for another push")
	case !VerifyB64(st.pub, a.Message(), a.Signature):
		return sdk.FinishVerifyResponse{Reason: "the answer's signature does not verify with the device key", Suspicious: true}
	case now.After(sess.Deadline):
		return refuse("the answer came after the deadline")
	}
	signed := time.UnixMilli(a.Time)
	if signed.Before(sess.At.Add(-ClockSkew)) || signed.After(sess.Deadline.Add(ClockSkew)) {
		return refuse("the answer was signed outside the push's time (check the device's clock)")
	}
	switch {
	case a.Decision == Report:
		return sdk.FinishVerifyResponse{Reason: "the user reported that this sign-in was not theirs", Suspicious: true, Reported: true}
	case a.Decision == Deny:
		return refuse("the user denied the sign-in")
	case sess.Number != "" && a.Number != sess.Number:
		return refuse("the user picked the wrong number")
	}
	return sdk.FinishVerifyResponse{OK: true}
}
