package integration

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestMetricsAreThereBeforeTheFirstEvent: a fresh keyfleetd publishes the
// series operators alert on at 0, its real store size, its certificate's
// expiry and the chain check; route labels are paths and methods are
// bounded whatever clients send.
func TestMetricsAreThereBeforeTheFirstEvent(t *testing.T) {
	dir := initData(t)
	d := start(t, dir)
	var m string
	waitFor(t, "the audit chain check", func() bool {
		m = d.probe(t, "/metrics", "")
		return strings.Contains(m, "keyfleet_audit_chain_broken 0")
	})
	for _, want := range []string{
		`keyfleet_verifications_total{kind="piv",outcome="failed"} 0`,
		`keyfleet_verifications_total{kind="fido2",outcome="ok"} 0`,
		`keyfleet_enrolments_total{kind="piv",outcome="refused"} 0`,
		`keyfleet_lockouts_total{what="user"} 0`,
		`keyfleet_lockouts_total{what="factor"} 0`,
		`keyfleet_lockouts_total{what="recovery"} 0`,
	} {
		if !strings.Contains(m, want+"\n") {
			t.Errorf("a fresh keyfleetd has no %s", want)
		}
	}
	if size := metricValue(t, m, "keyfleet_store_size_bytes"); size < 1024 {
		t.Errorf("keyfleet_store_size_bytes = %v with a store on disk", size)
	}
	if got, want := metricValue(t, m, "keyfleet_tls_certificate_expiry_timestamp_seconds"), certNotAfter(t, filepath.Join(dir, "tls", "cert.pem")); got != want {
		t.Errorf("certificate expiry %v, want %v", got, want)
	}

	token := adminToken(t, dir)
	d.call(token, "GET", "/v1/users", nil, nil)
	for i := range 20 {
		req, _ := http.NewRequest(fmt.Sprintf("BREW%d", i), d.url+"/v1/users/nobody", nil)
		if resp, err := d.http.Do(req); err == nil {
			resp.Body.Close()
		}
	}
	m = d.probe(t, "/metrics", "")
	if !strings.Contains(m, `keyfleet_http_requests_total{code="200",method="GET",route="/v1/users"} 1`) {
		t.Errorf("no request series with the route's path:\n%s", grepLines(m, "keyfleet_http_requests_total"))
	}
	for _, l := range strings.Split(grepLines(m, "keyfleet_http_request"), "\n") {
		if regexp.MustCompile(`route="[A-Z]+ `).MatchString(l) || strings.Contains(l, "BREW") {
			t.Errorf("an unbounded or repeated label: %s", l)
		}
	}
}

func metricValue(t *testing.T, text, name string) float64 {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + name + ` (\S+)$`).FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("no %s in the scrape", name)
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	return v
}

func certNotAfter(t *testing.T, path string) float64 {
	b, _ := os.ReadFile(path)
	blk, _ := pem.Decode(b)
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return float64(c.NotAfter.Unix())
}
