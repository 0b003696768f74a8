package main

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/keyfleet/keyfleet/agent"
	agentfido2 "github.com/keyfleet/keyfleet/agent/fido2"
	"github.com/keyfleet/keyfleet/agent/vkey"
	"github.com/keyfleet/keyfleet/api"
	fido2kind "github.com/keyfleet/keyfleet/daemon/kinds/fido2"
	pivkind "github.com/keyfleet/keyfleet/daemon/kinds/piv"
)

// BenchmarkProvisionVirtualKey provisions a virtual YubiKey's PIV applet
// (through pcscd and vpcd) and a FIDO2 credential, per op.
func BenchmarkProvisionVirtualKey(b *testing.B) {
	ca, _ := vkey.NewCA(nil)
	card := plug(b, vkey.Options{CA: ca, Serial: 40000099})
	fca, _ := agentfido2.NewCA()
	d := startBoth(b, kindsConfig{piv: pivkind.Config{Roots: []*x509.Certificate{ca.Root()}}, fido2: fido2kind.Config{Roots: []*x509.Certificate{fca.Root()}}})
	token := d.deskToken(b)
	ctx := context.Background()
	var apdus uint64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		// One user: the same virtual key is reset and provisioned again.
		user := "bench"
		d.admin.CreateUser(ctx, api.CreateUser{Username: user})
		soft := softKey(b, fca, uint32(50000000+i))
		before := card.APDUs()
		b.StartTimer()
		if _, errOut, code := agentCmd(b, d, token, "", "provision", "--reader", pcsc.Slots[0].Reader, "--user", user, "--reset", "--fido2", "--soft-fido2", soft, "--pin-file", writePIN(b, "24681357")); code != 0 {
			b.Fatal(errOut)
		}
		apdus += card.APDUs() - before
	}
	b.ReportMetric(float64(apdus)/float64(b.N), "APDUs/op")
}

// BenchmarkDaemonEnrolmentFinish measures POST /v1/enrolments/{id}/complete
// for FIDO2 registrations (attestation verified, factor stored, audited),
// from parallel clients: a user's first factor (which also draws and
// hashes the user's recovery codes) and a further one.
func BenchmarkDaemonEnrolmentFinish(b *testing.B) {
	b.Run("first-factor", func(b *testing.B) { benchFinish(b, false) })
	b.Run("second-factor", func(b *testing.B) { benchFinish(b, true) })
}

func benchFinish(b *testing.B, second bool) {
	fca, _ := agentfido2.NewCA()
	d := startBoth(b, kindsConfig{fido2: fido2kind.Config{Roots: []*x509.Certificate{fca.Root()}, RequireAttestation: true}})
	ctx := context.Background()
	key, _ := agentfido2.NewSoft(agentfido2.SoftOptions{CA: fca})
	// The first factor lives on another key: an enrolment excludes the
	// user's existing credentials, so one key cannot register twice.
	firstKey, _ := agentfido2.NewSoft(agentfido2.SoftOptions{CA: fca})
	jobs := make(chan job, b.N)
	for i := 0; i < b.N; i++ {
		user := fmt.Sprintf("tp%d", i)
		d.admin.CreateUser(ctx, api.CreateUser{Username: user})
		if second {
			j := registration(b, d, firstKey, user)
			if _, err := d.admin.CompleteEnrolment(ctx, j.id, api.CompleteEnrolment{Payload: j.body}); err != nil {
				b.Fatal(err)
			}
		}
		jobs <- registration(b, d, key, user)
	}
	close(jobs)
	start := time.Now()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			j := <-jobs
			if _, err := d.admin.CompleteEnrolment(ctx, j.id, api.CompleteEnrolment{Payload: j.body}); err != nil {
				b.Error(err)
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "finishes/s")
}

type job struct {
	id   string
	body []byte
}

// registration opens a fido2 enrolment for user and answers it with key.
func registration(b *testing.B, d *testDaemon, key agent.FIDO2Token, user string) job {
	e, err := d.admin.CreateEnrolment(context.Background(), api.CreateEnrolment{User: user, Kind: "fido2"})
	if err != nil {
		b.Fatal(err)
	}
	opts, _, err := agent.CreationOptions(e.Params)
	if err != nil {
		b.Fatal(err)
	}
	reg, err := agent.Register(key, opts, agent.Ceremony{Origin: testOrigin})
	if err != nil {
		b.Fatal(err)
	}
	body, _ := json.Marshal(reg)
	return job{e.ID, body}
}
