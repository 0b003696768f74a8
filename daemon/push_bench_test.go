package daemon_test

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/api/client"
	"github.com/keyfleet/keyfleet/daemon"
	"github.com/keyfleet/keyfleet/daemon/push"
	"github.com/keyfleet/keyfleet/plugins/host"
	pushkind "github.com/keyfleet/keyfleet/plugins/push"
	"github.com/keyfleet/keyfleet/plugins/sdk/sdktest"
	"github.com/keyfleet/keyfleet/plugins/totp"
)

// benchClient is an HTTP/1.1 client with a connection per concurrent
// request, as separate applications and phones have.
func (e *pushEnv) benchClient(token string) *client.Client {
	c, err := client.New(client.Config{Server: e.url, Token: token, CAPEM: e.ca,
		HTTPClient: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}})
	if err != nil {
		e.tb.Fatal(err)
	}
	return c
}

// simulated is a companion that answers every push at once with the
// number its user's sign-in screen shows (numbers: what the application
// got from begin).
type simulated struct {
	dev     *pushkind.Device
	c       *client.Client
	numbers chan string
}

func (s *simulated) run(ctx context.Context, ready chan<- struct{}, errs chan<- error) {
	once := sync.Once{}
	err := s.c.PushStream(ctx, time.Minute, func(ev client.PushEvent) error {
		switch ev.Type {
		case "ready":
			once.Do(func() { ready <- struct{}{} })
		case "push":
			var d pushkind.Delivery
			json.Unmarshal(ev.Data, &d)
			a, _ := s.dev.Answer(d, <-s.numbers, pushkind.Approve, time.Now())
			go func() {
				if out, err := s.c.AnswerPush(ctx, a); err != nil || !out.OK {
					errs <- fmt.Errorf("answer: %+v %v", out, err)
				}
			}()
		}
		return nil
	})
	if ctx.Err() == nil {
		errs <- err
	}
}

// BenchmarkPushVerifications measures complete push verifications: an
// application begins (POST /v1/verify/begin), keyfleetd delivers the push
// over the companion's open stream, the simulated companion signs the
// right number at once (POST /v1/push/answer), and the application's
// finish, waiting for the answer, returns verified. 32 users, each with a
// connected companion and an application client working for them.
func BenchmarkPushVerifications(b *testing.B) {
	cfg := daemon.Config{Push: push.Config{MaxPerUser: 1000, Period: push.Duration{Duration: time.Second}}}
	b.Run("kind=in-process", func(b *testing.B) { benchPush(b, startPushEnv(b, cfg)) })
	b.Run("kind=plugin", func(b *testing.B) {
		// keyfleet-plugin-push through the plugin host (gRPC, AutoMTLS), as keyfleetd runs it.
		bin := sdktest.Build(b, "github.com/keyfleet/keyfleet/cmd/keyfleet-plugin-push", "push")
		withPlugin := cfg
		withPlugin.Plugins = host.Config{Dir: filepath.Dir(bin), Plugins: []host.PluginConfig{{Name: filepath.Base(bin), SHA256: sdktest.Sum(b, bin)}}}
		benchPush(b, startPushEnv(b, withPlugin, totp.Factor{}))
	})
}

func benchPush(b *testing.B, e *pushEnv) {
	users := benchUsers()
	app := e.benchClient(e.appToken)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready, errs := make(chan struct{}, users), make(chan error, users)
	sims := make([]*simulated, users)
	for i := range sims {
		dev, _ := e.companion(fmt.Sprintf("u%02d", i))
		sims[i] = &simulated{dev: dev, c: e.benchClient("").WithDevice(dev), numbers: make(chan string, 1)}
		go sims[i].run(ctx, ready, errs)
	}
	for range users {
		<-ready
	}
	var next atomic.Int64
	b.ResetTimer()
	start := time.Now()
	b.SetParallelism(users / runtime.GOMAXPROCS(0))
	b.RunParallel(func(pb *testing.PB) {
		i := int(next.Add(1)-1) % users
		user, sim := fmt.Sprintf("u%02d", i), sims[i]
		for pb.Next() {
			v, err := app.BeginVerify(ctx, api.BeginVerify{User: user, Kinds: []string{"push"}, Application: "bench"})
			if err != nil {
				b.Error(err)
				return
			}
			var p pushkind.Prompt
			json.Unmarshal(v.Factors[0].Prompt, &p)
			sim.numbers <- p.Number
			res, err := app.FinishVerify(ctx, api.FinishVerify{ID: v.ID, FactorID: v.Factors[0].FactorID})
			if err != nil || !res.OK {
				b.Errorf("finish: %+v %v", res, err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "verifications/s")
	select {
	case err := <-errs:
		b.Fatal(err)
	default:
	}
}

// BenchmarkPushOpenChannels measures what keeping companions connected
// costs keyfleetd: 10,000 companions, each with its own device key and
// TLS connection, hold a stream open (from a separate process, so that
// only the daemon's side is measured). It reports the daemon's memory
// (Go heap and stacks, and resident size) per connected companion. Run
// it once (-benchtime 1x): enrolling the companions is most of its time.
func BenchmarkPushOpenChannels(b *testing.B) {
	n := 10_000
	if s := os.Getenv("KEYFLEET_BENCH_COMPANIONS"); s != "" {
		fmt.Sscan(s, &n)
	}
	e := startPushEnv(b, daemon.Config{Push: push.Config{KeepAlive: push.Duration{Duration: 20 * time.Second}}})
	keys := e.enrolMany(n)
	before := memNow()
	swarm := exec.Command(os.Args[0], "-test.run=^TestPushSwarm$", "-test.v")
	swarm.Env = append(os.Environ(), "KEYFLEET_SWARM_URL="+e.url, "KEYFLEET_SWARM_KEYS="+keys, "KEYFLEET_SWARM_CA="+string(e.ca))
	out, _ := swarm.StdoutPipe()
	swarm.Stderr = os.Stderr
	if err := swarm.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { swarm.Process.Kill(); swarm.Wait() }()
	sc := bufio.NewScanner(out)
	for sc.Scan() && !strings.HasPrefix(sc.Text(), "swarm: connected") {
	}
	if m := metricFromDaemon(e); m != float64(n) {
		b.Fatalf("%v companions connected, want %d", m, n)
	}
	after := memNow()
	if f := os.Getenv("KEYFLEET_BENCH_HEAPPROFILE"); f != "" {
		out, _ := os.Create(f)
		pprof.WriteHeapProfile(out)
		out.Close()
	}
	b.ReportMetric(float64(after.heap-before.heap)/float64(n), "heap-B/companion")
	b.ReportMetric(float64(after.stack-before.stack)/float64(n), "stack-B/companion")
	b.ReportMetric(float64(after.rss-before.rss)/float64(n), "rss-B/companion")
	b.ReportMetric(float64(after.goroutines-before.goroutines)/float64(n), "goroutines/companion")
}

type mem struct{ heap, stack, rss, goroutines int64 }

func memNow() mem {
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	var pages int64
	if b, err := os.ReadFile("/proc/self/statm"); err == nil {
		var size int64
		fmt.Sscan(string(b), &size, &pages)
	}
	return mem{heap: int64(ms.HeapInuse), stack: int64(ms.StackInuse), rss: pages * int64(os.Getpagesize()), goroutines: int64(runtime.NumGoroutine())}
}

func metricFromDaemon(e *pushEnv) float64 {
	return e.srv.ConnectedCompanions()
}

// enrolMany enrols n companions from 16 goroutines and writes their
// factor ids and keys (PKCS #8, base64) to a file, one per line.
func (e *pushEnv) enrolMany(n int) string {
	lines := make([]string, n)
	var wg sync.WaitGroup
	var next atomic.Int64
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				dev, _ := e.companion(fmt.Sprintf("swarm%05d", i))
				der, _ := x509.MarshalPKCS8PrivateKey(dev.Key)
				lines[i] = dev.FactorID + " " + base64.StdEncoding.EncodeToString(der)
			}
		}()
	}
	wg.Wait()
	path := e.tb.TempDir() + "/keys"
	os.WriteFile(path, []byte(strings.Join(lines, "\n")), 0o600)
	return path
}

// TestPushSwarm is the benchmark's other process: it connects every
// companion in KEYFLEET_SWARM_KEYS and holds the streams open until it
// is killed. Without the variable it does nothing.
func TestPushSwarm(t *testing.T) {
	keys := os.Getenv("KEYFLEET_SWARM_KEYS")
	if keys == "" {
		return
	}
	raw, err := os.ReadFile(keys)
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: -1}}
	base, err := client.New(client.Config{Server: os.Getenv("KEYFLEET_SWARM_URL"), CAPEM: []byte(os.Getenv("KEYFLEET_SWARM_CA")), HTTPClient: hc})
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(raw), "\n")
	ready := make(chan struct{}, len(lines))
	sem := make(chan struct{}, 64) // connect 64 at a time
	for _, line := range lines {
		id, k, _ := strings.Cut(line, " ")
		der, _ := base64.StdEncoding.DecodeString(k)
		key, err := x509.ParsePKCS8PrivateKey(der)
		if err != nil {
			t.Fatal(err)
		}
		dev := &pushkind.Device{Key: key.(*ecdsa.PrivateKey), FactorID: id}
		c := base.WithDevice(dev)
		sem <- struct{}{}
		go func() {
			var once sync.Once
			err := c.PushStream(context.Background(), time.Hour, func(ev client.PushEvent) error {
				if ev.Type == "ready" {
					once.Do(func() { ready <- struct{}{}; <-sem })
				}
				return nil
			})
			t.Errorf("a stream ended: %v", err)
		}()
	}
	for range lines {
		<-ready
	}
	fmt.Println("swarm: connected", len(lines))
	select {}
}

// benchUsers is how many users (each with a companion and an application
// client) the verification benchmark runs: KEYFLEET_BENCH_PUSH_USERS,
// default 32.
func benchUsers() int {
	n := 32
	if s := os.Getenv("KEYFLEET_BENCH_PUSH_USERS"); s != "" {
		fmt.Sscan(s, &n)
	}
	return n
}
