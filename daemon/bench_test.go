package daemon_test

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon"
	"github.com/keyfleet/keyfleet/daemon/audit"
)

// benchDaemon runs a real keyfleetd (HTTPS, Badger on disk) in this
// process and returns its URL, a client and the admin token.
func benchDaemon(b *testing.B) (string, *http.Client, string) {
	b.Helper()
	dir, cfg, token := initOn(b, badger)
	n := serveNodes(b, dir, cfg, quiet(daemon.Options{}), 1)
	return n.urls[0], n.hc, token
}

func send(hc *http.Client, token, method, url string, body []byte) (int, error) {
	req, _ := http.NewRequest(method, url, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// BenchmarkAPICreateUser measures POST /v1/users: a durable mutation with
// its audit event, through HTTPS, sequentially and from 16 clients, on
// each backend, and on PostgreSQL with the 16 clients spread over two
// keyfleetd on the same database.
func BenchmarkAPICreateUser(b *testing.B) {
	runs := []struct {
		backend            string
		keyfleetd, clients int
	}{
		{badger, 1, 1}, {badger, 1, 16},
		{postgres, 1, 1}, {postgres, 1, 16}, {postgres, 2, 16},
	}
	for _, run := range runs {
		b.Run(fmt.Sprintf("backend=%s/keyfleetd=%d/clients=%d", run.backend, run.keyfleetd, run.clients), func(b *testing.B) {
			dir, cfg, token := initOn(b, run.backend)
			n := serveNodes(b, dir, cfg, quiet(daemon.Options{}), run.keyfleetd)
			var seq atomic.Int64
			create := func() {
				i := seq.Add(1)
				body, _ := json.Marshal(api.CreateUser{Username: fmt.Sprintf("bench-%d", i)})
				if code, err := send(n.hc, token, "POST", n.url(i)+"/v1/users", body); err != nil || code != 201 {
					b.Fatalf("create: %d %v", code, err)
				}
			}
			stats := startPGStats(b, cfg.Store.Postgres.DSN)
			cpu := startCPU()
			b.ResetTimer()
			if run.clients == 1 {
				for range b.N {
					create()
				}
			} else {
				b.SetParallelism(run.clients / runtime.GOMAXPROCS(0))
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						create()
					}
				})
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "creates/s")
			cpu.report(b, b.N)
			stats.write(b, b.N)
			if c, s := storeSyncs(n.hc, n.urls...); s > 0 {
				b.ReportMetric(c/s, "commits/sync")
			}
		})
	}
}

// BenchmarkAPIReadUser measures GET /v1/users/{user} from 16 clients.
func BenchmarkAPIReadUser(b *testing.B) {
	url, hc, token := benchDaemon(b)
	for i := range 100 {
		body, _ := json.Marshal(api.CreateUser{Username: fmt.Sprintf("r-%d", i)})
		send(hc, token, "POST", url+"/v1/users", body)
	}
	var n atomic.Int64
	b.SetParallelism(16 / runtime.GOMAXPROCS(0))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if code, err := send(hc, token, "GET", fmt.Sprintf("%s/v1/users/r-%d", url, n.Add(1)%100), nil); err != nil || code != 200 {
				b.Fatalf("read: %d %v", code, err)
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "reads/s")
}

// BenchmarkAuditChainCheck measures the hash-chain check alone, over
// records already in memory.
func BenchmarkAuditChainCheck(b *testing.B) {
	const n = 100_000
	recs := make([]audit.Record, n)
	var c audit.Chain
	for i := range recs {
		ev := &audit.Event{Action: "user.create", Actor: api.Actor{ID: "usr_06h1wtrjbrmm3y0s3n6ttprat4", Name: "admin", Auth: "token"},
			Target: api.Target{Type: "user", ID: "usr_06h1wtsz9352y90rhjvs5gebz4", Name: fmt.Sprintf("user-%d", i)},
			After:  map[string]any{"status": "active", "roles": []string{"user"}}, RequestID: "0123456789abcdef01234567", Source: "127.0.0.1:50000"}
		recs[i], _ = c.Next(ev)
	}
	b.ResetTimer()
	for range b.N {
		var v audit.Verifier
		for _, r := range recs {
			if err := v.Check(r.Seq, r); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(len(recs[n/2].Body)), "body-bytes")
}

// tlsClient trusts the daemon's self-signed certificate.
func tlsClient(b *testing.B, dir string) *http.Client {
	b.Helper()
	hc, err := tlsClientFor(dir)
	if err != nil {
		b.Fatal(err)
	}
	return hc
}

func tlsClientFor(dir string) (*http.Client, error) {
	pem, err := os.ReadFile(filepath.Join(dir, "tls", "cert.pem"))
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, MaxIdleConnsPerHost: 64}}, nil
}

func pemOf(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}
