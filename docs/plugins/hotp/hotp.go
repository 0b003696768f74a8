package main

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/base32"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/url"

	"github.com/keyfleet/keyfleet/plugins/sdk"
)

// HOTP is the factor kind "hotp".
type HOTP struct{}

// state is the seed and the lowest unused counter; the host seals it.
type state struct {
	Key  []byte `json:"key"`
	Next uint64 `json:"next"`
}

const window = 10 // how far a code's counter may be from Next (RFC 4226 §7.4)

// Code is the code of key at counter c (RFC 4226 §5.3).
func Code(key []byte, c uint64) string {
	mac := hmac.New(sha1.New, key)
	mac.Write(binary.BigEndian.AppendUint64(nil, c))
	h := mac.Sum(nil)
	o := h[len(h)-1] & 0x0f
	return fmt.Sprintf("%06d", (binary.BigEndian.Uint32(h[o:])&0x7fffffff)%1_000_000)
}

func (HOTP) Describe(context.Context) (sdk.Info, error) {
	in := []sdk.Input{{Name: "code", Description: "the next code the token shows"}}
	return sdk.Info{Kind: "hotp", DisplayName: "Counter-based code (HOTP)", Version: "0.1.0", EnrolInputs: in, VerifyInputs: in, ChallengeFree: true}, nil
}

func (HOTP) BeginEnrol(_ context.Context, req sdk.BeginEnrolRequest) (sdk.BeginEnrolResponse, error) {
	st := state{Key: make([]byte, 20)}
	_, _ = rand.Read(st.Key)
	secret := base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(st.Key)
	uri := "otpauth://hotp/keyfleet:" + url.PathEscape(req.User.Username) + "?issuer=keyfleet&counter=0&secret=" + secret
	b, _ := json.Marshal(st)
	return sdk.BeginEnrolResponse{Display: map[string]string{"uri": uri, "secret": secret}, State: b}, nil
}

func (HOTP) FinishEnrol(_ context.Context, req sdk.FinishEnrolRequest) (sdk.FinishEnrolResponse, error) {
	st, code, err := decode(req.State, req.Response)
	if err != nil {
		return sdk.FinishEnrolResponse{}, err
	}
	if ok, _ := st.check(code); !ok {
		return sdk.FinishEnrolResponse{}, fmt.Errorf("%w: the code is not valid", sdk.ErrInvalidRequest)
	}
	b, _ := json.Marshal(st)
	return sdk.FinishEnrolResponse{State: b, Public: []byte(`{"algorithm":"SHA1","digits":6}`)}, nil
}

func (HOTP) BeginVerify(_ context.Context, req sdk.BeginVerifyRequest) (sdk.BeginVerifyResponse, error) {
	_, _, err := decode(req.State, []byte(`{"code":"?"}`)) // nothing to send; only check the state
	return sdk.BeginVerifyResponse{}, err
}

func (HOTP) FinishVerify(_ context.Context, req sdk.FinishVerifyRequest) (sdk.FinishVerifyResponse, error) {
	st, code, err := decode(req.State, req.Response)
	if err != nil {
		return sdk.FinishVerifyResponse{}, err
	}
	if ok, replay := st.check(code); !ok {
		return sdk.FinishVerifyResponse{Reason: "invalid code", Suspicious: replay}, nil
	}
	b, _ := json.Marshal(st)
	return sdk.FinishVerifyResponse{OK: true, State: b}, nil
}

// check compares code in constant time with the counters around Next and
// moves Next past a fresh match; replay means it matched a used counter.
func (st *state) check(code string) (ok, replay bool) {
	hit := uint64(0) // matched counter + 1
	for c := st.Next - min(st.Next, window); c < st.Next+window; c++ {
		if subtle.ConstantTimeCompare([]byte(Code(st.Key, c)), []byte(code)) == 1 && hit == 0 {
			hit = c + 1
		}
	}
	if hit <= st.Next {
		return false, hit != 0
	}
	st.Next = hit
	return true, false
}

func decode(stateJSON, response []byte) (*state, string, error) {
	var st state
	if json.Unmarshal(stateJSON, &st) != nil || len(st.Key) < 16 {
		return nil, "", fmt.Errorf("%w: not an hotp state", sdk.ErrInvalidState)
	}
	var r struct{ Code string }
	if json.Unmarshal(response, &r) != nil || r.Code == "" {
		return nil, "", fmt.Errorf("%w: want {\"code\": \"123456\"}", sdk.ErrInvalidRequest)
	}
	return &st, r.Code, nil
}
