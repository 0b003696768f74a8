package coretest

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/core"
)

// People makes the people a test needs and proves their actions: each
// person gets a "testkey" factor (register Key with the service), and
// Prove answers a proof challenge with it. Users with privileged roles
// are made by core.System, which is not held to the two-person rule (as
// keyfleetd init is not); everything a test then does goes through the
// rules.
type People struct {
	T   testing.TB
	Svc *core.Service
	// secrets holds each person's key secret by user id.
	secrets map[string]string
}

// NewPeople returns a People for svc.
func NewPeople(t testing.TB, svc *core.Service) *People {
	return &People{T: t, Svc: svc, secrets: map[string]string{}}
}

// Person makes an active person with roles and a testkey factor, and
// returns the principal a token of theirs stands for.
func (pp *People) Person(name string, roles ...string) core.Principal {
	pp.T.Helper()
	ctx := context.Background()
	u, _, err := pp.Svc.CreateUser(ctx, core.System, api.CreateUser{Username: name, Roles: roles})
	if err != nil {
		pp.T.Fatalf("creating %s: %v", name, err)
	}
	pp.GiveKey(u.ID)
	return core.Principal{UserID: u.ID, Username: u.Username, Roles: u.Roles, Auth: "token"}
}

// GiveKey enrols a testkey factor for a user (made by the daemon, as if
// handed over and activated) and remembers its secret.
func (pp *People) GiveKey(userID string) core.Factor {
	pp.T.Helper()
	ctx := context.Background()
	e, _, err := pp.Svc.CreateEnrolment(ctx, core.System, api.CreateEnrolment{User: userID, Kind: "testkey"})
	if err != nil {
		pp.T.Fatalf("enrolling a key for %s: %v", userID, err)
	}
	secret := fmt.Sprintf("key-of-%s-%d", userID, len(pp.secrets))
	f, err := pp.Svc.CompleteEnrolment(ctx, core.System, e.ID, api.CompleteEnrolment{Label: "test key", Payload: EnrolPayload(e.Challenge, secret, "")})
	if err != nil {
		pp.T.Fatalf("completing the key of %s: %v", userID, err)
	}
	pp.secrets[userID] = secret
	return f
}

// Prove returns p carrying a fresh proof of one action, answered with p's
// test key. request is the action's request body (nil for none).
func (pp *People) Prove(p core.Principal, action, subject string, request any) core.Principal {
	pp.T.Helper()
	ch, err := pp.Svc.BeginProof(context.Background(), p, api.ProofRequest{Action: action, Subject: subject, Request: body(request)})
	if err != nil {
		pp.T.Fatalf("%s asking for a proof of %s: %v", p.Username, action, err)
	}
	p.Proof = pp.Answer(p.UserID, ch)
	return p
}

// ProveWith returns p carrying a fresh proof of one action, answered by
// answer (for a factor of another kind: a test kind's secret, say).
func (pp *People) ProveWith(p core.Principal, action, subject string, request any, answer func(api.VerificationFactor) json.RawMessage) core.Principal {
	pp.T.Helper()
	ch, err := pp.Svc.BeginProof(context.Background(), p, api.ProofRequest{Action: action, Subject: subject, Request: body(request)})
	if err != nil {
		pp.T.Fatalf("%s asking for a proof of %s: %v", p.Username, action, err)
	}
	f := ch.Factors[0]
	p.Proof = &api.Proof{ID: ch.ID, FactorID: f.FactorID, Response: answer(f)}
	return p
}

// SecretAnswer answers a prompt of the "test" kind with its secret.
func SecretAnswer(secret string) func(api.VerificationFactor) json.RawMessage {
	return func(api.VerificationFactor) json.RawMessage {
		b, _ := json.Marshal(map[string]string{"Secret": secret})
		return b
	}
}

// Answer answers a proof challenge with the user's test key.
func (pp *People) Answer(userID string, ch api.ProofChallenge) *api.Proof {
	pp.T.Helper()
	for _, f := range ch.Factors {
		if f.Kind == "testkey" {
			return &api.Proof{ID: ch.ID, FactorID: f.FactorID, Response: KeyAnswer(f.Prompt, pp.secrets[userID])}
		}
	}
	pp.T.Fatalf("the proof challenge offers no test key of %s", userID)
	return nil
}

// Approve approves a request as p, with a fresh proof.
func (pp *People) Approve(p core.Principal, id, comment string) (core.Approval, error) {
	pp.T.Helper()
	return pp.Svc.Approve(context.Background(), pp.Prove(p, "approval.approve", id, nil), id, comment)
}

// Deny denies a request as p, with a fresh proof.
func (pp *People) Deny(p core.Principal, id, comment string) (core.Approval, error) {
	pp.T.Helper()
	return pp.Svc.Deny(context.Background(), pp.Prove(p, "approval.deny", id, nil), id, comment)
}

// body is a request's JSON (nil for none).
func body(request any) json.RawMessage {
	if request == nil {
		return nil
	}
	b, err := json.Marshal(request)
	if err != nil {
		panic(err)
	}
	return b
}
