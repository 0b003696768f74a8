package daemon_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pquerna/otp"
	otptotp "github.com/pquerna/otp/totp"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon"
	"github.com/keyfleet/keyfleet/daemon/events"
	"github.com/keyfleet/keyfleet/plugins/sdk"
	"github.com/keyfleet/keyfleet/plugins/totp"
)

// totpFixture is a daemon with users holding many TOTP factors, so a
// benchmark can verify fresh codes without tripping replay protection:
// each factor accepts the current step and then the next one.
type totpFixture struct {
	url, token string
	hc         *http.Client
	factors    []string
	seeds      []string
	users      []string
	next       atomic.Int64
}

// factorsPerUser keeps each user's factor list short: begin and policy
// look at a user's factors on every call.
const factorsPerUser = 40

func newTOTPFixture(b *testing.B, n int, sinks []events.SinkConfig) *totpFixture {
	b.Helper()
	dir := filepath.Join(b.TempDir(), "data")
	if _, err := daemon.Init(context.Background(), daemon.InitOptions{Dir: dir}); err != nil {
		b.Fatal(err)
	}
	cfg := daemon.Config{DataDir: dir}
	cfg.Events.Sinks = sinks
	url, hc, token := serve(b, dir, cfg, daemon.Options{LogOut: io.Discard, Kinds: []sdk.Factor{totp.Factor{}}})
	f := &totpFixture{url: url, token: token, hc: hc}
	var svc api.CreatedToken
	post(b, f, "/v1/users", api.CreateUser{Username: "app", Kind: api.KindService}, nil)
	post(b, f, "/v1/tokens", api.CreateToken{User: "app", Name: "bench"}, &svc)
	for i := range n {
		user := fmt.Sprintf("bench-%d", i/factorsPerUser)
		if i%factorsPerUser == 0 {
			post(b, f, "/v1/users", api.CreateUser{Username: user}, nil)
		}
		var en api.Enrolment
		post(b, f, "/v1/enrolments", api.CreateEnrolment{User: user, Kind: "totp"}, &en)
		// Enrol with the previous step's code, so the current and the next
		// step are both still fresh for the benchmark.
		code, _ := otptotp.GenerateCode(en.Display["secret"], time.Now().Add(-30*time.Second))
		var fac api.Factor
		post(b, f, "/v1/enrolments/"+en.ID+"/complete", api.CompleteEnrolment{Payload: json.RawMessage(fmt.Sprintf(`{"code":%q}`, code))}, &fac)
		f.factors, f.seeds, f.users = append(f.factors, fac.ID), append(f.seeds, en.Display["secret"]), append(f.users, user)
	}
	f.token = svc.Secret
	return f
}

func serve(b *testing.B, dir string, cfg daemon.Config, o daemon.Options) (string, *http.Client, string) {
	b.Helper()
	srv, err := daemon.New(cfg, o)
	if err != nil {
		b.Fatal(err)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln, nil) }()
	b.Cleanup(func() { cancel(); <-done })
	hc := tlsClient(b, dir)
	tok, _ := os.ReadFile(filepath.Join(dir, "admin.token"))
	return "https://" + ln.Addr().String(), hc, strings.TrimSpace(string(tok))
}

func post(b *testing.B, f *totpFixture, path string, in, out any) {
	b.Helper()
	body, _ := json.Marshal(in)
	req, _ := http.NewRequest("POST", f.url+path, strings.NewReader(string(body)))
	req.Header.Set("Authorization", "Bearer "+f.token)
	resp, err := f.hc.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		msg, _ := io.ReadAll(resp.Body)
		b.Fatalf("POST %s: %d %s", path, resp.StatusCode, msg)
	}
	if out != nil {
		json.NewDecoder(resp.Body).Decode(out)
	}
}

// verifyOnce runs begin and finish for the next unused (factor, step).
func (f *totpFixture) verifyOnce(b *testing.B) {
	i := int(f.next.Add(1) - 1)
	n := len(f.factors)
	if i >= 2*n {
		b.Fatalf("the fixture has %d factors: run with -benchtime=%dx or less", n, 2*n)
	}
	factor, seed, user := f.factors[i%n], f.seeds[i%n], f.users[i%n]
	at := time.Now().Add(time.Duration(i/n) * 30 * time.Second) // this step, then the next
	code, _ := otptotp.GenerateCodeCustom(seed, at, otptotp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	var v api.Verification
	post(b, f, "/v1/verify/begin", api.BeginVerify{User: user, FactorID: factor}, &v)
	var res api.VerifyResult
	post(b, f, "/v1/verify/finish", api.FinishVerify{ID: v.ID, FactorID: factor, Response: json.RawMessage(`{"code":"` + code + `"}`)}, &res)
	if !res.OK {
		b.Fatalf("a fresh code for %s was refused", factor)
	}
}

// BenchmarkAPIVerifyTOTP measures a TOTP verification through the HTTP
// API (begin and finish, replay-protected, audited) from 16 clients,
// without event sinks and with three (file, syslog TCP, HTTPS webhook),
// beside pquerna/otp's own code check of the same kind.
func BenchmarkAPIVerifyTOTP(b *testing.B) {
	const factors = 1200 // 2,400 verifications: run with -benchtime=2400x at most
	for _, withSinks := range []bool{false, true} {
		b.Run(fmt.Sprintf("sinks=%d", map[bool]int{false: 0, true: 3}[withSinks]), func(b *testing.B) {
			var sinks []events.SinkConfig
			if withSinks {
				sinks = threeSinks(b)
			}
			f := newTOTPFixture(b, factors, sinks)
			b.SetParallelism(8) // 16 clients on 2 cores
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					f.verifyOnce(b)
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "verifications/s")
		})
	}
	b.Run("pquerna-validate", func(b *testing.B) {
		key, _ := otptotp.Generate(otptotp.GenerateOpts{Issuer: "keyfleet", AccountName: "bench"})
		for b.Loop() {
			code, _ := otptotp.GenerateCode(key.Secret(), time.Now())
			if !otptotp.Validate(code, key.Secret()) {
				b.Fatal("pquerna/otp refused its own code")
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "verifications/s")
	})
}

// threeSinks starts a syslog TCP listener and an HTTPS webhook receiver
// that discard what they get, and configures them with a file sink.
func threeSinks(b *testing.B) []events.SinkConfig {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go io.Copy(io.Discard, c)
		}
	}()
	hook := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.Copy(io.Discard, r.Body) }))
	b.Cleanup(hook.Close)
	caFile := filepath.Join(b.TempDir(), "hook-ca.pem")
	os.WriteFile(caFile, pemOf(hook.Certificate().Raw), 0o600)
	return []events.SinkConfig{
		{Name: "file", Type: "file", File: &events.FileConfig{Path: filepath.Join(b.TempDir(), "events.jsonl")}},
		{Name: "syslog", Type: "syslog", Syslog: &events.SyslogConfig{Network: "tcp", Address: ln.Addr().String()}},
		{Name: "webhook", Type: "webhook", Webhook: &events.WebhookConfig{URL: hook.URL, Secret: "0123456789abcdef0123456789abcdef", CAFile: caFile}},
	}
}
