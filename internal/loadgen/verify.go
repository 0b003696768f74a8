package loadgen

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	otptotp "github.com/pquerna/otp/totp"

	"github.com/keyfleet/keyfleet/api"
)

// Verification modes.
const (
	OneCall     = "one-call"     // POST /v1/verify
	BeginFinish = "begin-finish" // POST /v1/verify/begin, then /finish
)

// verifyOp is one prepared verification: a fresh code of one factor.
type verifyOp struct {
	factor int
	step   uint64
	check  []byte // the one-call body
	begin  []byte // begin's body; finish's is made from its answer
	code   string
}

// errRefused: the daemon answered a fresh code with ok false.
var errRefused = errors.New("a fresh code was refused")

// Plan prepares every verification the fixture allows now: each factor's
// next two time steps, all factors' first step before any second one.
// It waits until the clock has moved past the steps the last run used, so
// that every factor has two fresh steps (at most a minute). wait is told
// how long it waits.
func (f *Fixture) Plan(ctx context.Context, mode string, wait func(time.Duration)) ([]verifyOp, error) {
	var used uint64
	for _, ff := range f.Factors {
		used = max(used, ff.Used)
	}
	if now := step(time.Now()); now <= used {
		d := time.Until(stepTime(used + 1))
		if wait != nil {
			wait(d)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(d + 50*time.Millisecond):
		}
	}
	now := step(time.Now())
	ops := make([]verifyOp, 0, 2*len(f.Factors))
	for _, s := range []uint64{now, now + 1} {
		for i, ff := range f.Factors {
			if s <= ff.Used {
				continue
			}
			op, err := prepare(ff, i, s, mode)
			if err != nil {
				return nil, err
			}
			ops = append(ops, op)
		}
	}
	return ops, nil
}

func prepare(ff FixtureFactor, i int, s uint64, mode string) (verifyOp, error) {
	code, err := otptotp.GenerateCode(ff.Seed, stepTime(s))
	if err != nil {
		return verifyOp{}, err
	}
	op := verifyOp{factor: i, step: s, code: code}
	resp := json.RawMessage(`{"code":"` + code + `"}`)
	switch mode {
	case OneCall:
		op.check, err = json.Marshal(api.CheckVerify{User: ff.User, FactorID: ff.ID, Response: resp})
	case BeginFinish:
		op.begin, err = json.Marshal(api.BeginVerify{User: ff.User, FactorID: ff.ID})
	default:
		err = fmt.Errorf("loadgen: no verification mode %q (%s or %s)", mode, OneCall, BeginFinish)
	}
	return op, err
}

// Verify runs the planned verifications from clients at once and marks
// the steps used in the fixture (save it after).
func (f *Fixture) Verify(ctx context.Context, c *Client, ops []verifyOp, clients int) Result {
	c = c.WithToken(f.Token)
	res := Run(ctx, len(ops), clients, func(ctx context.Context, i int) error {
		return verifyOne(ctx, c, f.Factors[ops[i].factor], ops[i])
	})
	for _, op := range ops {
		ff := &f.Factors[op.factor]
		ff.Used = max(ff.Used, op.step)
	}
	return res
}

func verifyOne(ctx context.Context, c *Client, ff FixtureFactor, op verifyOp) error {
	var res api.VerifyResult
	if op.check != nil {
		if err := c.DoRaw(ctx, "POST", "/v1/verify", op.check, &res); err != nil {
			return err
		}
	} else {
		var v api.Verification
		if err := c.DoRaw(ctx, "POST", "/v1/verify/begin", op.begin, &v); err != nil {
			return err
		}
		body, _ := json.Marshal(api.FinishVerify{ID: v.ID, FactorID: ff.ID, Response: json.RawMessage(`{"code":"` + op.code + `"}`)})
		if err := c.DoRaw(ctx, "POST", "/v1/verify/finish", body, &res); err != nil {
			return err
		}
	}
	if !res.OK {
		return fmt.Errorf("%w: factor %s, step %d", errRefused, ff.ID, op.step)
	}
	return nil
}
