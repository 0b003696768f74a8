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
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pquerna/otp"
	otptotp "github.com/pquerna/otp/totp"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon"
	"github.com/keyfleet/keyfleet/daemon/core"
	"github.com/keyfleet/keyfleet/daemon/events"
	"github.com/keyfleet/keyfleet/plugins/sdk"
	"github.com/keyfleet/keyfleet/plugins/totp"
)

// totpFixture is a daemon with users holding TOTP factors, so a benchmark
// can verify fresh codes without tripping replay protection: each factor
// accepts the current step and then the next one. The data is built once
// on Badger (a first enrolment costs ten argon2id hashes per user); every
// run copies it (onto PostgreSQL with keyfleetd migrate-store's code) and
// starts its own keyfleetd on the copy, so that every run has all its
// codes fresh.
type totpFixture struct {
	urls    []string // the keyfleetd serving it, used round robin
	token   string
	hc      *http.Client
	factors []string
	seeds   []string
	users   []string
	next    *atomic.Int64
	// Users with one TOTP factor each, for the RADIUS listener: a code
	// alone names no factor, so a user with two is asked to pick one.
	radiusUsers, radiusSeeds []string
	radiusNext               *atomic.Int64
	radiusAddr               string
	dsn                      string // the PostgreSQL database, if on PostgreSQL
	// svc reads what an enrolment shows its user (the seed is sealed for
	// them), while the fixture is built.
	svc *core.Service
}

// url is where the i-th verification goes.
func (f *totpFixture) url(i int) string { return f.urls[i%len(f.urls)] }

// seed is the TOTP seed an enrolment shows its user, read as that user.
func (f *totpFixture) seed(en api.Enrolment) (string, error) {
	holder := core.Principal{UserID: en.UserID, Roles: []string{api.RoleUser}, Auth: "token"}
	e, err := f.svc.GetEnrolment(context.Background(), holder, en.ID)
	if err != nil {
		return "", err
	}
	seed := f.svc.UserDisplay(e)["secret"]
	if seed == "" {
		return "", fmt.Errorf("enrolment %s shows its user no seed", en.ID)
	}
	return seed, nil
}

// factorsPerUser is what a real user has: begin and the policy look at
// all of a user's factors on every call.
const factorsPerUser = 2

var totpData struct {
	once sync.Once
	dir  string
	f    totpFixture
	err  error
}

// totpFixtureFor serves a fresh copy of the shared TOTP data on backend,
// with the given sinks, from count keyfleetd, the first with the RADIUS
// listener when radiusSecret is set.
func totpFixtureFor(b *testing.B, n int, backend string, count int, sinks []events.SinkConfig, radiusSecret string) *totpFixture {
	b.Helper()
	totpData.once.Do(func() { totpData.dir, totpData.f, totpData.err = cachedTOTPData(n) })
	if totpData.err != nil {
		b.Fatal(totpData.err)
	}
	dir, cfg := copyData(b, totpData.dir, backend)
	cfg.Events.Sinks = sinks
	if radiusSecret != "" {
		cfg.Radius = benchRadius(b, radiusSecret)
	}
	nodes := serveNodes(b, dir, cfg, quiet(daemon.Options{Kinds: []sdk.Factor{totp.Factor{}}}), count)
	f := totpData.f
	f.urls, f.hc, f.radiusAddr = nodes.urls, nodes.hc, nodes.servers[0].RadiusAddr()
	f.dsn = cfg.Store.Postgres.DSN
	f.next, f.radiusNext = &atomic.Int64{}, &atomic.Int64{}
	admin, err := os.ReadFile(filepath.Join(dir, "admin.token"))
	if err != nil {
		b.Fatal(err)
	}
	f.warm(b, strings.TrimSpace(string(admin)))
	f.warmVerify(b)
	if f.radiusAddr != "" {
		f.warmRadius(b)
	}
	waitLeaderWork(b, f.hc, f.urls)
	if len(sinks) > 0 {
		waitSinks(b, f.hc, f.urls)
	}
	return &f
}

// waitLeaderWork waits until one of the keyfleetd at urls leads and has
// done its first round of leader's work (the compliance gauges are set):
// on PostgreSQL leadership comes a couple of seconds after the start, and
// its first compliance sweep reads every user, which is not what a
// benchmark of verifications measures.
func waitLeaderWork(b *testing.B, hc *http.Client, urls []string) {
	b.Helper()
	waitMetrics(b, hc, urls, "no keyfleetd set the compliance gauges within a minute: none leads", func(body string) bool {
		return strings.Contains(body, "\nkeyfleet_compliance_users{")
	})
}

// waitSinks waits until the leader's event sinks have handled every
// event (keyfleet_events_lag is 0 for each), so that those of the warm-up
// are not delivered during the measured part.
func waitSinks(b *testing.B, hc *http.Client, urls []string) {
	b.Helper()
	waitMetrics(b, hc, urls, "the event sinks did not catch up within a minute", func(body string) bool {
		sinks, behind := 0, 0
		for _, line := range strings.Split(body, "\n") {
			if name, v, ok := strings.Cut(line, " "); ok && strings.HasPrefix(name, "keyfleet_events_lag{") {
				sinks++
				if v != "0" {
					behind++
				}
			}
		}
		return sinks > 0 && behind == 0
	})
}

// waitMetrics polls the /metrics of each keyfleetd at urls until one
// satisfies done, for up to a minute, then fails with timeout.
func waitMetrics(b *testing.B, hc *http.Client, urls []string, timeout string, done func(body string) bool) {
	b.Helper()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		for _, url := range urls {
			resp, err := hc.Get(url + "/metrics")
			if err != nil {
				b.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if done(string(body)) {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	b.Fatal(timeout)
}

// warm reads every user's status and factors once from every keyfleetd,
// so that their caches hold what they will read, as a running daemon's
// do; the measured part then does not pay for the first decryptions.
func (f *totpFixture) warm(b *testing.B, admin string) {
	seen := map[string]bool{}
	users := f.users
	if f.radiusAddr != "" {
		users = append(slices.Clip(users), f.radiusUsers...)
	}
	for _, u := range users {
		if seen[u] {
			continue
		}
		seen[u] = true
		for _, url := range f.urls {
			for _, path := range []string{"/v1/users/" + u + "/mfa-status", "/v1/factors?user=" + u} {
				req, _ := http.NewRequest("GET", url+path, nil)
				req.Header.Set("Authorization", "Bearer "+admin)
				resp, err := f.hc.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					b.Fatalf("warming up: GET %s: %d", path, resp.StatusCode)
				}
			}
		}
	}
}

// warmVerify verifies every user once on every keyfleetd (at most two),
// from 16 clients, with the user's second factor, which the measured
// part does not use (nextCode): what a keyfleetd that has run a while
// has done. A user's first verification after a start also records the
// policy rules that apply to them (core's notePolicy: two more round
// trips to PostgreSQL), and the pool's connections prepare their
// statements; neither happens again while the keyfleetd runs.
func (f *totpFixture) warmVerify(b *testing.B) {
	if len(f.urls) > 2 {
		b.Fatalf("warmVerify warms two keyfleetd at most (a factor has two fresh codes), not %d", len(f.urls))
	}
	users := len(f.factors) / factorsPerUser
	next := atomic.Int64{}
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= users*len(f.urls) {
					return
				}
				node, j := i/users, i%users*factorsPerUser+1
				at := time.Now().Add(time.Duration(node) * 30 * time.Second) // this step on the first, the next on the second
				code, _ := otptotp.GenerateCodeCustom(f.seeds[j], at, otptotp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
				var res api.VerifyResult
				err := postTo(f, f.urls[node], "/v1/verify", api.CheckVerify{User: f.users[j], FactorID: f.factors[j], Response: json.RawMessage(`{"code":"` + code + `"}`)}, &res)
				if err == nil && !res.OK {
					err = fmt.Errorf("warming up: a fresh code for %s was refused", f.factors[j])
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
}

// benchDataEnv names a folder where the TOTP fixture is kept between runs
// (for profiling; a run uses the current and the next time step of every
// factor, so leave a minute between runs on the same data).
const benchDataEnv = "KEYFLEET_BENCH_DATA"

// benchProfileEnv names a file for a CPU profile of the measured part
// only; a "%" in it is replaced by the benchmark's name, so that each
// sub-benchmark of a run keeps its own.
const benchProfileEnv = "KEYFLEET_BENCH_CPUPROFILE"

type savedFixture struct {
	Token                 string
	Factors, Seeds, Users []string
	RadiusUsers           []string
	RadiusSeeds           []string
}

func cachedTOTPData(n int) (string, totpFixture, error) {
	keep := os.Getenv(benchDataEnv)
	if keep == "" {
		return buildTOTPData(n)
	}
	meta := filepath.Join(keep, "fixture.json")
	if b, err := os.ReadFile(meta); err == nil {
		var sf savedFixture
		if err := json.Unmarshal(b, &sf); err != nil {
			return "", totpFixture{}, err
		}
		return filepath.Join(keep, "data"), totpFixture{token: sf.Token, factors: sf.Factors, seeds: sf.Seeds, users: sf.Users, next: &atomic.Int64{},
			radiusUsers: sf.RadiusUsers, radiusSeeds: sf.RadiusSeeds, radiusNext: &atomic.Int64{}}, nil
	}
	dir, f, err := buildTOTPData(n)
	if err != nil {
		return "", f, err
	}
	if err := os.MkdirAll(keep, 0o700); err != nil {
		return "", f, err
	}
	if err := os.Rename(dir, filepath.Join(keep, "data")); err != nil {
		return "", f, err
	}
	if err := os.Rename(dir+".checkpoint", filepath.Join(keep, "data.checkpoint")); err != nil && !os.IsNotExist(err) {
		return "", f, err
	}
	b, _ := json.Marshal(savedFixture{Token: f.token, Factors: f.factors, Seeds: f.seeds, Users: f.users,
		RadiusUsers: f.radiusUsers, RadiusSeeds: f.radiusSeeds})
	return filepath.Join(keep, "data"), f, os.WriteFile(meta, b, 0o600)
}

// profileCPU writes a CPU profile of the rest of b to the file named in
// benchProfileEnv, if any.
func profileCPU(b *testing.B) {
	path := os.Getenv(benchProfileEnv)
	if path == "" {
		return
	}
	path = strings.ReplaceAll(path, "%", strings.NewReplacer("/", "_", "=", "-").Replace(b.Name()))
	out, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	if err := pprof.StartCPUProfile(out); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { pprof.StopCPUProfile(); out.Close() })
}

func buildTOTPData(n int) (string, totpFixture, error) {
	dir, err := os.MkdirTemp("", "keyfleet-totp-bench-")
	if err != nil {
		return "", totpFixture{}, err
	}
	dir = filepath.Join(dir, "data")
	if _, err := daemon.Init(context.Background(), daemon.InitOptions{Dir: dir}); err != nil {
		return "", totpFixture{}, err
	}
	srv, url, hc, stop, err := serveServer(dir, daemon.Config{DataDir: dir}, daemon.Options{LogOut: io.Discard, Kinds: []sdk.Factor{totp.Factor{}}})
	if err != nil {
		return "", totpFixture{}, err
	}
	defer stop()
	tok, _ := os.ReadFile(filepath.Join(dir, "admin.token"))
	f := totpFixture{urls: []string{url}, token: strings.TrimSpace(string(tok)), hc: hc, next: &atomic.Int64{}, radiusNext: &atomic.Int64{}, svc: srv.Service()}
	var svc api.CreatedToken
	if err := postErr(&f, "/v1/users", api.CreateUser{Username: "app", Kind: api.KindService}, nil); err != nil {
		return "", f, err
	}
	if err := postErr(&f, "/v1/tokens", api.CreateToken{User: "app", Name: "bench"}, &svc); err != nil {
		return "", f, err
	}
	for i := range n {
		if err := enrolTOTP(&f, i); err != nil {
			return "", f, err
		}
	}
	for i := range radiusBenchUsers {
		if err := enrolRadiusUser(&f, i); err != nil {
			return "", f, err
		}
	}
	f.token = svc.Secret
	return dir, f, nil
}

func enrolTOTP(f *totpFixture, i int) error {
	user := fmt.Sprintf("bench-%d", i/factorsPerUser)
	if i%factorsPerUser == 0 {
		if err := postErr(f, "/v1/users", api.CreateUser{Username: user}, nil); err != nil {
			return err
		}
	}
	var en api.Enrolment
	if err := postErr(f, "/v1/enrolments", api.CreateEnrolment{User: user, Kind: "totp"}, &en); err != nil {
		return err
	}
	seed, err := f.seed(en)
	if err != nil {
		return err
	}
	// Enrol with the previous step's code, so the current and the next
	// step are both still fresh for the benchmarks; once more if a step
	// ended on the way (the code is then two steps old).
	var fac api.Factor
	for try := 0; ; try++ {
		code, _ := otptotp.GenerateCode(seed, time.Now().Add(-30*time.Second))
		body := api.CompleteEnrolment{Payload: json.RawMessage(fmt.Sprintf(`{"code":%q}`, code))}
		err := postErr(f, "/v1/enrolments/"+en.ID+"/complete", body, &fac)
		if err == nil {
			break
		}
		if try == 1 {
			return err
		}
	}
	f.factors, f.seeds, f.users = append(f.factors, fac.ID), append(f.seeds, seed), append(f.users, user)
	return nil
}

func serve(dir string, cfg daemon.Config, o daemon.Options) (string, *http.Client, func(), error) {
	_, url, hc, stop, err := serveServer(dir, cfg, o)
	return url, hc, stop, err
}

// serveServer is serve that also returns the server, once it serves.
func serveServer(dir string, cfg daemon.Config, o daemon.Options) (*daemon.Server, string, *http.Client, func(), error) {
	srv, err := daemon.New(cfg, o)
	if err != nil {
		return nil, "", nil, nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", nil, nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	ready := make(chan struct{})
	go func() { done <- srv.Serve(ctx, ln, func(string) { close(ready) }) }()
	select {
	case <-ready:
	case err := <-done:
		cancel()
		return nil, "", nil, nil, err
	}
	hc, err := tlsClientFor(dir)
	return srv, "https://" + ln.Addr().String(), hc, func() { cancel(); <-done }, err
}

// postErr posts to the first keyfleetd.
func postErr(f *totpFixture, path string, in, out any) error {
	return postTo(f, f.urls[0], path, in, out)
}

func postTo(f *totpFixture, url, path string, in, out any) error {
	body, _ := json.Marshal(in)
	req, _ := http.NewRequest("POST", url+path, strings.NewReader(string(body)))
	req.Header.Set("Authorization", "Bearer "+f.token)
	resp, err := f.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		msg, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("POST %s: %d %s", path, resp.StatusCode, msg)
	}
	if out != nil {
		return json.NewDecoder(resp.Body).Decode(out)
	}
	return nil
}

func post(b *testing.B, f *totpFixture, url, path string, in, out any) {
	b.Helper()
	if err := postTo(f, url, path, in, out); err != nil {
		b.Fatal(err)
	}
}

// nextCode picks the next unused (factor, step), its code, and the
// keyfleetd to send it to: each user's first factor, this step and then
// the next (warmVerify uses the second).
func (f *totpFixture) nextCode(b *testing.B) (factor, user, code, url string) {
	i := int(f.next.Add(1) - 1)
	n := len(f.factors) / factorsPerUser
	if i >= 2*n {
		b.Fatalf("the fixture's %d users have no fresh codes left: run with a smaller -benchtime", n)
	}
	j := i % n * factorsPerUser
	factor, seed, user := f.factors[j], f.seeds[j], f.users[j]
	at := time.Now().Add(time.Duration(i/n) * 30 * time.Second) // this step, then the next
	code, _ = otptotp.GenerateCodeCustom(seed, at, otptotp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	return factor, user, code, f.url(i)
}

// checkOnce checks the next fresh code in one call (POST /v1/verify).
func (f *totpFixture) checkOnce(b *testing.B) {
	factor, user, code, url := f.nextCode(b)
	var res api.VerifyResult
	post(b, f, url, "/v1/verify", api.CheckVerify{User: user, FactorID: factor, Response: json.RawMessage(`{"code":"` + code + `"}`)}, &res)
	if !res.OK {
		b.Fatalf("a fresh code for %s was refused", factor)
	}
}

// verifyOnce runs begin and finish for the next unused (factor, step).
func (f *totpFixture) verifyOnce(b *testing.B) {
	factor, user, code, url := f.nextCode(b)
	var v api.Verification
	post(b, f, url, "/v1/verify/begin", api.BeginVerify{User: user, FactorID: factor}, &v)
	var res api.VerifyResult
	post(b, f, url, "/v1/verify/finish", api.FinishVerify{ID: v.ID, FactorID: factor, Response: json.RawMessage(`{"code":"` + code + `"}`)}, &res)
	if !res.OK {
		b.Fatalf("a fresh code for %s was refused", factor)
	}
}

// BenchmarkAPIVerifyTOTP measures a TOTP verification through the HTTP
// API (replay-protected, audited) from 16 clients, on each backend: begin
// and finish, and the one-call check, without event sinks, and begin and
// finish with three sinks (file, syslog TCP, HTTPS webhook); the same
// through the RADIUS listener (an Access-Request with the code,
// Message-Authenticator checked and set, the decision audited); on
// PostgreSQL also the one-call check spread over two keyfleetd; beside
// pquerna/otp's own code check of the same kind. Each reports its p99
// latency and the CPU one verification costs.
func BenchmarkAPIVerifyTOTP(b *testing.B) {
	const factors = 2400 // 1,200 users: 2,400 fresh codes per run, 1,600 through RADIUS: -benchtime=1500x at most
	type run struct {
		name          string
		keyfleetd     int
		sinks, radius bool
		once          func(*totpFixture, *testing.B)
	}
	runs := []run{
		{"begin-finish/sinks=0", 1, false, false, (*totpFixture).verifyOnce},
		{"one-call/sinks=0", 1, false, false, (*totpFixture).checkOnce},
		{"radius/sinks=0", 1, false, true, (*totpFixture).radiusOnce},
		{"begin-finish/sinks=3", 1, true, false, (*totpFixture).verifyOnce},
	}
	for _, backend := range backends {
		all := runs
		if backend == postgres {
			all = append(slices.Clip(all), run{"one-call/sinks=0/keyfleetd=2", 2, false, false, (*totpFixture).checkOnce})
		}
		for _, run := range all {
			b.Run("backend="+backend+"/"+run.name, func(b *testing.B) {
				var sinks []events.SinkConfig
				if run.sinks {
					sinks = threeSinks(b)
				}
				secret := ""
				if run.radius {
					secret = "bench-shared-secret-0123456789"
				}
				f := totpFixtureFor(b, factors, backend, run.keyfleetd, sinks, secret)
				b.SetParallelism(8) // 16 clients on 2 cores
				profileCPU(b)
				lat := &latencies{}
				stats := startPGStats(b, f.dsn)
				cpu := startCPU()
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					var mine []time.Duration
					for pb.Next() {
						start := time.Now()
						run.once(f, b)
						mine = append(mine, time.Since(start))
					}
					lat.add(mine)
				})
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "verifications/s")
				b.ReportMetric(lat.p99().Seconds()*1000, "p99-ms")
				cpu.report(b, b.N)
				stats.write(b, b.N)
				if c, n := storeSyncs(f.hc, f.urls...); n > 0 {
					b.ReportMetric(c/n, "commits/sync")
				}
			})
		}
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

// storeSyncs reads keyfleet_store_{commits,syncs}_total from /metrics
// of each keyfleetd at urls and adds them up.
func storeSyncs(hc *http.Client, urls ...string) (commits, syncs float64) {
	for _, url := range urls {
		resp, err := hc.Get(url + "/metrics")
		if err != nil {
			return 0, 0
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, line := range strings.Split(string(body), "\n") {
			name, v, ok := strings.Cut(line, " ")
			if !ok {
				continue
			}
			x, _ := strconv.ParseFloat(v, 64)
			switch name {
			case "keyfleet_store_commits_total":
				commits += x
			case "keyfleet_store_syncs_total":
				syncs += x
			}
		}
	}
	return commits, syncs
}
