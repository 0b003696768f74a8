package core_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/core"
	"github.com/keyfleet/keyfleet/daemon/core/coretest"
	"github.com/keyfleet/keyfleet/plugins/sdk"
	"github.com/keyfleet/keyfleet/plugins/totp"
)

// newTOTPEnv is newEnv with the real TOTP kind in-process.
func newTOTPEnv(t *testing.T) *env {
	t.Helper()
	c := &clock{t: time.Now()}
	svc, st := openService(t, core.Config{Kinds: []sdk.Factor{coretest.Kind{}, coretest.Key{}, totp.Factor{}}, Now: c.Now})
	e := &env{t: t, svc: svc, st: st, clock: c, people: coretest.NewPeople(t, svc)}
	e.admin = e.principal(core.System, "root", api.RoleAdmin)
	e.admin2 = e.principal(e.admin, "second", api.RoleSecurityOfficer)
	return e
}

func TestTOTPEnrolmentOptionsComeFromThePolicyAndTheCreator(t *testing.T) {
	e := newTOTPEnv(t)
	ctx := context.Background()
	e.person("fin", "finance")
	e.person("otto")
	e.applyPolicy(e.admin, "version: 1\nrules:\n- name: finance\n  match: {groups: [finance]}\n  require:\n    totp: {algorithms: [SHA256, SHA512], digits: [8]}\n")
	tests := []struct {
		name string
		user string
		opts map[string]string
		want map[string]string // the enrolment's params; nil: refused with err
		err  error
	}{
		{"the policy's choice applies to what the creator leaves out", "fin", nil, map[string]string{"algorithm": "SHA256", "digits": "8", "period": "30"}, nil},
		{"the creator may pick within the policy", "fin", map[string]string{"algorithm": "SHA512", "period": "60"}, map[string]string{"algorithm": "SHA512", "digits": "8", "period": "60"}, nil},
		{"asking less than the policy is refused", "fin", map[string]string{"digits": "6"}, nil, core.ErrPolicyViolation},
		{"a user the policy leaves alone may have SHA-256 and 8 digits too", "otto", map[string]string{"algorithm": "SHA256", "digits": "8"}, map[string]string{"algorithm": "SHA256", "digits": "8", "period": "30"}, nil},
		{"an option keyfleetd sets itself is refused", "otto", map[string]string{"exclude_credentials": "x"}, nil, core.ErrInvalid},
		{"an option name that is not one is refused", "otto", map[string]string{"Algorithm!": "SHA1"}, nil, core.ErrInvalid},
		{"an option the kind does not have is refused", "otto", map[string]string{"colour": "blue"}, nil, core.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			en, _, err := e.svc.CreateEnrolment(ctx, e.admin, api.CreateEnrolment{User: tt.user, Kind: "totp", Options: tt.opts})
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if err != nil {
				return
			}
			var got map[string]string
			json.Unmarshal(en.Params, &got)
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Fatalf("params %v, want %v", got, tt.want)
			}
		})
	}
}

// TestATOTPFactorOutsideTheTightenedPolicyNoLongerCounts: a TOTP factor
// keeps its parameters, and a later policy asking for SHA-256 judges it.
func TestATOTPFactorOutsideTheTightenedPolicyNoLongerCounts(t *testing.T) {
	e := newTOTPEnv(t)
	ctx := context.Background()
	e.person("sam")
	en, _, err := e.svc.CreateEnrolment(ctx, e.admin, api.CreateEnrolment{User: "sam", Kind: "totp"})
	if err != nil {
		t.Fatal(err)
	}
	display := e.svc.UserDisplay(en) // sealed for sam: the test reads it as sam would
	code, _ := totp.Code(display["secret"], "SHA1", 6, 30, e.clock.Now())
	if _, err := e.svc.CompleteEnrolment(ctx, e.admin, en.ID, api.CompleteEnrolment{Payload: json.RawMessage(fmt.Sprintf(`{"code":%q}`, code))}); err != nil {
		t.Fatal(err)
	}
	e.applyPolicy(e.admin, "version: 1\nrules:\n- name: all\n  match: {everyone: true}\n  require:\n    totp: {algorithms: [SHA256]}\n")
	st, err := e.svc.MFAStatus(ctx, e.admin, "sam")
	if err != nil {
		t.Fatal(err)
	}
	if st.Status == "compliant" || !strings.Contains(strings.Join(st.Reasons, "\n"), "algorithm SHA1; the policy requires SHA256") {
		t.Fatalf("a SHA-1 app under a SHA-256 policy: %+v", st)
	}
}
