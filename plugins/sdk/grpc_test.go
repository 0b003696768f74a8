package sdk_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/keyfleet/keyfleet/plugins/sdk"
	"github.com/keyfleet/keyfleet/plugins/sdk/sdktest"
)

// echo returns what it was asked, or err.
type echo struct{ err error }

func (e echo) Describe(context.Context) (sdk.Info, error) {
	return sdk.Info{Kind: "echo", DisplayName: "Echo", Version: "1", Hardware: true, OutOfBand: true,
		VerifyInputs: []sdk.Input{{Name: "code", Description: "a code"}}, ChallengeFree: true}, e.err
}

func (e echo) BeginEnrol(_ context.Context, r sdk.BeginEnrolRequest) (sdk.BeginEnrolResponse, error) {
	return sdk.BeginEnrolResponse{Display: r.Options, Params: map[string]string{"user": r.User.Username, "now": r.Now.Format(time.RFC3339Nano)},
		State: r.Challenge}, e.err
}

func (e echo) FinishEnrol(_ context.Context, r sdk.FinishEnrolRequest) (sdk.FinishEnrolResponse, error) {
	return sdk.FinishEnrolResponse{State: r.State, Public: r.Response, Device: &sdk.Device{Serial: r.EnrolmentID}, Pending: true}, e.err
}

func (e echo) BeginVerify(_ context.Context, r sdk.BeginVerifyRequest) (sdk.BeginVerifyResponse, error) {
	res := sdk.BeginVerifyResponse{Prompt: r.State, Session: r.Challenge}
	if r.VerificationID != "" {
		res.Delivery = []byte(r.VerificationID + "|" + r.Context.Application + "|" + r.Context.Address)
		res.Deadline = r.Now.Add(time.Minute)
	}
	return res, e.err
}

func (e echo) FinishVerify(_ context.Context, r sdk.FinishVerifyRequest) (sdk.FinishVerifyResponse, error) {
	if e.err != nil {
		return sdk.FinishVerifyResponse{}, e.err
	}
	switch string(r.Response) {
	case "keep":
		return sdk.FinishVerifyResponse{OK: true}, nil
	case "empty":
		return sdk.FinishVerifyResponse{OK: true, State: []byte{}, Reason: r.FactorID, Suspicious: true}, nil
	case "report":
		return sdk.FinishVerifyResponse{Reason: "not me", Suspicious: true, Reported: true}, nil
	}
	return sdk.FinishVerifyResponse{OK: true, State: r.Response}, nil
}

func TestErrorsCrossTheWireAsSentinels(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want error
	}{
		{"an invalid request stays ErrInvalidRequest", fmt.Errorf("%w: bad code", sdk.ErrInvalidRequest), sdk.ErrInvalidRequest},
		{"invalid state stays ErrInvalidState", fmt.Errorf("%w: truncated", sdk.ErrInvalidState), sdk.ErrInvalidState},
		{"unsupported stays ErrUnsupported", sdk.ErrUnsupported, sdk.ErrUnsupported},
		{"unavailable stays ErrUnavailable", sdk.ErrUnavailable, sdk.ErrUnavailable},
		{"a deadline stays DeadlineExceeded", context.DeadlineExceeded, context.DeadlineExceeded},
	}
	for _, v := range versions {
		for _, tt := range tests {
			t.Run(fmt.Sprintf("v%d/%s", v, tt.name), func(t *testing.T) {
				f := sdktest.GRPCVersion(t, echo{err: tt.err}, v)
				_, err := f.FinishVerify(context.Background(), sdk.FinishVerifyRequest{})
				if !errors.Is(err, tt.want) {
					t.Fatalf("err = %v, want it to wrap %v", err, tt.want)
				}
				if err.Error() != tt.err.Error() {
					t.Errorf("message %q, want the plugin's %q", err, tt.err)
				}
			})
		}
		t.Run(fmt.Sprintf("v%d/any other error wraps no sentinel", v), func(t *testing.T) {
			f := sdktest.GRPCVersion(t, echo{err: errors.New("boom")}, v)
			for _, err := range []error{second(f.Describe(context.Background())), second(f.BeginVerify(context.Background(), sdk.BeginVerifyRequest{}))} {
				var re *sdk.RemoteError
				if !errors.As(err, &re) || errors.Unwrap(err) != nil || err.Error() != "boom" {
					t.Fatalf("err = %#v", err)
				}
			}
		})
	}
}

// versions are the plugin protocol versions every wire test runs in.
var versions = []int{1, 2}

func second[T any](_ T, err error) error { return err }

func TestValuesCrossTheWireUnchanged(t *testing.T) {
	for _, v := range versions {
		t.Run(fmt.Sprintf("v%d", v), func(t *testing.T) { valuesCrossTheWire(t, sdktest.GRPCVersion(t, echo{}, v)) })
	}
}

func valuesCrossTheWire(t *testing.T, f sdk.Factor) {
	ctx := context.Background()
	info, err := f.Describe(ctx)
	want := sdk.Info{Kind: "echo", DisplayName: "Echo", Version: "1", Hardware: true, OutOfBand: true,
		VerifyInputs: []sdk.Input{{Name: "code", Description: "a code"}}, ChallengeFree: true}
	if err != nil || !reflect.DeepEqual(info, want) {
		t.Errorf("Describe = %+v, %v", info, err)
	}
	now := time.Date(2026, 3, 4, 5, 6, 7, 890123456, time.UTC)
	begun, _ := f.BeginEnrol(ctx, sdk.BeginEnrolRequest{User: sdk.User{Username: "alice"}, Challenge: []byte{1, 2},
		Options: map[string]string{"a": "b"}, Now: now})
	if begun.Params["now"] != now.Format(time.RFC3339Nano) || begun.Params["user"] != "alice" || begun.Display["a"] != "b" || string(begun.State) != "\x01\x02" {
		t.Errorf("BeginEnrol = %+v", begun)
	}
	zero, _ := f.BeginEnrol(ctx, sdk.BeginEnrolRequest{})
	if zero.Params["now"] != (time.Time{}).Format(time.RFC3339Nano) || zero.State != nil || zero.Display != nil {
		t.Errorf("a zero request came back as %+v", zero)
	}
	fin, _ := f.FinishEnrol(ctx, sdk.FinishEnrolRequest{EnrolmentID: "e1", State: []byte("s"), Response: []byte("{}")})
	if !fin.Pending || fin.Device == nil || fin.Device.Serial != "e1" || string(fin.Public) != "{}" || fin.Evidence != nil {
		t.Errorf("FinishEnrol = %+v", fin)
	}
	oob, _ := f.BeginVerify(ctx, sdk.BeginVerifyRequest{VerificationID: "ver_1", Now: now,
		Context: sdk.VerifyContext{Application: "VPN", Address: "203.0.113.7"}})
	if string(oob.Delivery) != "ver_1|VPN|203.0.113.7" || !oob.Deadline.Equal(now.Add(time.Minute)) {
		t.Errorf("an out-of-band BeginVerify came back as %+v", oob)
	}
	plain, _ := f.BeginVerify(ctx, sdk.BeginVerifyRequest{Now: now})
	if plain.Delivery != nil || !plain.Deadline.IsZero() {
		t.Errorf("a verification with no delivery came back with %q, deadline %v", plain.Delivery, plain.Deadline)
	}
	reported, _ := f.FinishVerify(ctx, sdk.FinishVerifyRequest{Response: []byte("report")})
	if reported.OK || !reported.Reported || !reported.Suspicious {
		t.Errorf("a reported answer came back as %+v", reported)
	}
	kept, _ := f.FinishVerify(ctx, sdk.FinishVerifyRequest{Response: []byte("keep")})
	if !kept.OK || kept.State != nil {
		t.Errorf("no new state came back as %q", kept.State)
	}
	empty, _ := f.FinishVerify(ctx, sdk.FinishVerifyRequest{FactorID: "f1", Response: []byte("empty")})
	if empty.State == nil || len(empty.State) != 0 || empty.Reason != "f1" || !empty.Suspicious {
		t.Errorf("an empty new state came back as %#v", empty)
	}
}
