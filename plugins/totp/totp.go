package totp

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image/png"
	"io"
	"time"

	"github.com/pquerna/otp"
	otptotp "github.com/pquerna/otp/totp"

	"github.com/keyfleet/keyfleet/plugins/sdk"
)

// Version is this kind's version, reported by Describe.
const Version = "1.0.0"

// Factor is the TOTP kind. Its zero value is ready to use: seeds come from
// crypto/rand and the issuer shown in apps is "keyfleet".
type Factor struct {
	// Rand is the source of seeds; nil means crypto/rand.
	Rand io.Reader
	// Issuer is shown in authenticator apps unless policy sets "issuer".
	Issuer string
}

var _ sdk.Factor = Factor{}

// Describe names the kind "totp".
func (Factor) Describe(context.Context) (sdk.Info, error) {
	return sdk.Info{
		Kind: "totp", DisplayName: "Authenticator app (TOTP)", Version: Version, ChallengeFree: true,
		EnrolInputs:  []sdk.Input{{Name: "code", Description: "the code the app shows after adding the seed"}},
		VerifyInputs: []sdk.Input{{Name: "code", Description: "the code the app shows now"}},
	}, nil
}

// state is a TOTP factor's secret state.
type state struct {
	Seed      string `json:"seed"` // base32, no padding
	Algorithm string `json:"alg"`
	Digits    int    `json:"digits"`
	Period    int    `json:"period"`
	// Last is the last accepted time step; 0 before the first.
	Last uint64 `json:"last"`
}

// codeResponse is what the enrolling and verifying sides send.
type codeResponse struct {
	Code string `json:"code"`
}

// BeginEnrol generates a seed. Display carries "uri" (otpauth://),
// "secret" (base32) and "qr_png" (the URI as a base64 PNG QR code for
// authenticator apps), shown once; Params carry the public parameters.
// Returns sdk.ErrInvalidRequest for options it does not accept.
func (f Factor) BeginEnrol(_ context.Context, req sdk.BeginEnrolRequest) (sdk.BeginEnrolResponse, error) {
	p, err := parseOptions(req.Options)
	if err != nil {
		return sdk.BeginEnrolResponse{}, err
	}
	issuer := firstNonEmpty(req.Options["issuer"], f.Issuer, "keyfleet")
	account := firstNonEmpty(req.User.Username, req.User.ID, "user")
	key, err := otptotp.Generate(otptotp.GenerateOpts{
		Issuer: issuer, AccountName: account, Period: uint(p.Period), SecretSize: p.seedSize(),
		Digits: otp.Digits(p.Digits), Algorithm: p.algorithm(), Rand: f.rand(),
	})
	if err != nil {
		return sdk.BeginEnrolResponse{}, fmt.Errorf("totp: generating a seed: %w", err)
	}
	p.Seed = key.Secret()
	st, err := json.Marshal(p)
	if err != nil {
		return sdk.BeginEnrolResponse{}, fmt.Errorf("totp: encoding state: %w", err)
	}
	qr, err := qrPNG(key)
	if err != nil {
		return sdk.BeginEnrolResponse{}, err
	}
	return sdk.BeginEnrolResponse{
		Display: map[string]string{"uri": key.URL(), "secret": key.Secret(), "qr_png": qr},
		Params:  p.public(),
		State:   st,
	}, nil
}

// FinishEnrol accepts the enrolment when the response carries a valid
// code for the seed BeginEnrol made. Returns sdk.ErrInvalidRequest for a
// malformed response or a wrong code, sdk.ErrInvalidState for state that
// is not a TOTP enrolment's.
func (Factor) FinishEnrol(_ context.Context, req sdk.FinishEnrolRequest) (sdk.FinishEnrolResponse, error) {
	st, err := decodeState(req.State)
	if err != nil {
		return sdk.FinishEnrolResponse{}, err
	}
	code, err := decodeCode(req.Response)
	if err != nil {
		return sdk.FinishEnrolResponse{}, err
	}
	m := st.match(code, req.Now)
	if !m.ok || m.replay {
		return sdk.FinishEnrolResponse{}, fmt.Errorf("%w: the code is not valid; check the app's clock and enter the current code", sdk.ErrInvalidRequest)
	}
	st.Last = m.step
	out, err := json.Marshal(st)
	if err != nil {
		return sdk.FinishEnrolResponse{}, fmt.Errorf("totp: encoding state: %w", err)
	}
	pub, _ := json.Marshal(st.public())
	return sdk.FinishEnrolResponse{State: out, Public: pub}, nil
}

// BeginVerify needs no challenge: the user reads the code from the app.
// Returns sdk.ErrInvalidState for state that is not a TOTP factor's.
func (Factor) BeginVerify(_ context.Context, req sdk.BeginVerifyRequest) (sdk.BeginVerifyResponse, error) {
	st, err := decodeState(req.State)
	if err != nil {
		return sdk.BeginVerifyResponse{}, err
	}
	prompt, _ := json.Marshal(map[string]any{"input": "code", "digits": st.Digits})
	return sdk.BeginVerifyResponse{Prompt: prompt}, nil
}

// FinishVerify checks a code. A wrong code is OK=false; a code of an
// already accepted time step is OK=false and Suspicious. On success the
// returned state records the accepted step. Returns sdk.ErrInvalidRequest
// for a response that is not JSON with a "code", sdk.ErrInvalidState for
// state that is not a TOTP factor's.
func (Factor) FinishVerify(_ context.Context, req sdk.FinishVerifyRequest) (sdk.FinishVerifyResponse, error) {
	st, err := decodeState(req.State)
	if err != nil {
		return sdk.FinishVerifyResponse{}, err
	}
	code, err := decodeCode(req.Response)
	if err != nil {
		return sdk.FinishVerifyResponse{}, err
	}
	m := st.match(code, req.Now)
	switch {
	case m.replay:
		return sdk.FinishVerifyResponse{Reason: "code already used", Suspicious: true}, nil
	case !m.ok:
		return sdk.FinishVerifyResponse{Reason: "invalid code"}, nil
	}
	st.Last = m.step
	out, err := json.Marshal(st)
	if err != nil {
		return sdk.FinishVerifyResponse{}, fmt.Errorf("totp: encoding state: %w", err)
	}
	return sdk.FinishVerifyResponse{OK: true, State: out}, nil
}

func (f Factor) rand() io.Reader {
	if f.Rand != nil {
		return f.Rand
	}
	return rand.Reader
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// Code returns the code for seed (base32) at t under the given algorithm
// ("SHA1", "SHA256", "SHA512"), digits and period in seconds. It is what
// an authenticator app shows; tests and drivers use it.
func Code(seed, algorithm string, digits, period int, t time.Time) (string, error) {
	st := state{Seed: seed, Algorithm: algorithm, Digits: digits, Period: period}
	if err := st.check(); err != nil {
		return "", err
	}
	return st.code(uint64(t.Unix()) / uint64(period))
}

// qrPNG renders the otpauth URI as a 256-pixel PNG QR code, base64.
func qrPNG(key *otp.Key) (string, error) {
	img, err := key.Image(256, 256)
	if err != nil {
		return "", fmt.Errorf("totp: drawing the QR code: %w", err)
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return "", fmt.Errorf("totp: encoding the QR code: %w", err)
	}
	return base64.StdEncoding.EncodeToString(buf.Bytes()), nil
}
