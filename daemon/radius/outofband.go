package radius

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/core"
)

// Instructions is implemented by an OutOfBand whose prompt asks the user
// for something the NAS must show (a push's number to pick on the
// phone); the challenges of that prompt say it instead of the plain
// "approve the sign-in".
type Instructions interface {
	Instructions(ticket string) string
}

// Verifications is what CoreOutOfBand needs of the domain
// (*core.Service).
type Verifications interface {
	BeginVerify(ctx context.Context, p core.Principal, in api.BeginVerify) (api.Verification, error)
	FinishVerify(ctx context.Context, p core.Principal, in api.FinishVerify) (api.VerifyResult, error)
}

var (
	_ Verifications = (*core.Service)(nil)
	_ OutOfBand     = CoreOutOfBand{}
	_ Instructions  = CoreOutOfBand{}
)

// CoreOutOfBand answers core's out-of-band kinds (push) for the listener
// through the verification API any application uses: Start begins a
// verification of the one factor, which sends the push (the application
// is "RADIUS" and the NAS's name, the address its Calling-Station-Id when
// that is an IP address); Poll finishes it without waiting, each time the
// NAS comes back. keyfleetd maps every out-of-band kind to one.
type CoreOutOfBand struct{ Service Verifications }

// ticket is what the listener keeps for Poll (never sent to the NAS).
type ticket struct {
	ID      string `json:"id"`
	Factor  string `json:"factor"`
	Message string `json:"message"`
}

// Start sends the push.
func (o CoreOutOfBand) Start(ctx context.Context, p core.Principal, user string, f core.LoginFactor) (string, error) {
	ri := core.RequestFrom(ctx)
	app := "RADIUS"
	if nas := firstOf(ri.Extra["nas_identifier"], ri.Extra["radius_client"]); nas != "" {
		app += " (" + nas + ")"
	}
	var addr string
	if a, err := netip.ParseAddr(ri.Extra["calling_station_id"]); err == nil {
		addr = a.String()
	}
	v, err := o.Service.BeginVerify(ctx, p, api.BeginVerify{User: user, FactorID: f.ID, Application: app, Address: addr})
	if err != nil {
		return "", err
	}
	if len(v.Factors) != 1 || !v.Factors[0].OutOfBand {
		return "", fmt.Errorf("radius: factor %s was not sent out of band", f.ID)
	}
	var prompt struct {
		Message string `json:"message"`
	}
	json.Unmarshal(v.Factors[0].Prompt, &prompt)
	b, _ := json.Marshal(ticket{ID: v.ID, Factor: f.ID, Message: prompt.Message})
	return string(b), nil
}

// Poll asks once whether the push was answered.
func (o CoreOutOfBand) Poll(ctx context.Context, p core.Principal, t string) (Answer, error) {
	var tk ticket
	if err := json.Unmarshal([]byte(t), &tk); err != nil {
		return Denied, fmt.Errorf("radius: not an out-of-band ticket: %w", err)
	}
	res, err := o.Service.FinishVerify(ctx, p, api.FinishVerify{ID: tk.ID, FactorID: tk.Factor, Wait: "0s"})
	switch {
	case errors.Is(err, core.ErrVerificationClosed) || errors.Is(err, core.ErrNotFound):
		return Denied, nil
	case err != nil:
		return Denied, err
	case res.Pending:
		return Pending, nil
	case res.OK:
		return Approved, nil
	}
	return Denied, nil
}

// Instructions is the kind's prompt ("Open keyfleet on Pixel and pick
// 47."), and what to do after.
func (CoreOutOfBand) Instructions(t string) string {
	var tk ticket
	if json.Unmarshal([]byte(t), &tk) != nil || tk.Message == "" {
		return ""
	}
	return tk.Message + " Then press Enter."
}

func firstOf(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
