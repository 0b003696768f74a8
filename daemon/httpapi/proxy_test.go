package httpapi_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/clientaddr"
)

// behindProxy serves the API as keyfleetd does with trusted_proxies set to
// prefixes: the test client (127.0.0.1) is then the proxy.
func behindProxy(t *testing.T, prefixes ...string) *fixture {
	var trusted []netip.Prefix
	for _, p := range prefixes {
		trusted = append(trusted, netip.MustParsePrefix(p))
	}
	return newFixtureWith(t, func(h http.Handler) http.Handler { return clientaddr.Middleware(clientaddr.New(trusted), h) })
}

const badPass = `{"code":"kfp-aaaaa-bbbbb-ccccc-ddddd"}`

func TestBehindATrustedProxyEachClientIsAuditedAndLimitedByItsOwnAddress(t *testing.T) {
	f := behindProxy(t, "127.0.0.0/8")
	for i := 1; i <= 10; i++ {
		if status, body, _ := f.send("", "POST", "/v1/passes/redeem", badPass, "X-Forwarded-For", "203.0.113.7"); status != http.StatusUnauthorized {
			t.Fatalf("attempt %d: %d %s", i, status, body)
		}
	}
	status, body, hdr := f.send("", "POST", "/v1/passes/redeem", badPass, "X-Forwarded-For", "203.0.113.7")
	if p := problemOf(t, body); status != http.StatusTooManyRequests || p.Type != "/problems/rate-limited" || hdr.Get("Retry-After") == "" {
		t.Fatalf("the 11th attempt from one client: %d %s (Retry-After %q)", status, body, hdr.Get("Retry-After"))
	}
	status, body, _ = f.send("", "POST", "/v1/passes/redeem", badPass, "Forwarded", `for="203.0.113.8"`)
	if status != http.StatusUnauthorized {
		t.Fatalf("another client behind the same proxy was refused: %d %s", status, body)
	}
	_, body = f.do(aud, "GET", "/v1/audit?action=pass.redeem_refused", "")
	var pg api.Page[api.AuditEvent]
	json.Unmarshal(body, &pg)
	sources := map[string]int{}
	for _, ev := range pg.Items {
		sources[ev.Source]++
	}
	if len(pg.Items) != 11 || sources["203.0.113.7"] != 10 || sources["203.0.113.8"] != 1 {
		t.Fatalf("refusals audited from %v, want 10 from 203.0.113.7 and 1 from 203.0.113.8", sources)
	}
	if logs := f.logs.String(); !strings.Contains(logs, `"source":"203.0.113.7","proxy":"127.0.0.1:`) {
		t.Fatalf("the request log does not name the client and its proxy: %s", logs)
	}
}

func TestAClientThatIsNoTrustedProxyCannotChooseItsAddress(t *testing.T) {
	f := behindProxy(t, "10.0.0.0/8") // the test client is not a proxy
	for i := 1; i <= 10; i++ {
		xff := fmt.Sprintf("198.51.100.%d", i)
		if status, body, _ := f.send("", "POST", "/v1/passes/redeem", badPass, "X-Forwarded-For", xff, "Forwarded", "for="+xff); status != http.StatusUnauthorized {
			t.Fatalf("attempt %d: %d %s", i, status, body)
		}
	}
	status, body, _ := f.send("", "POST", "/v1/passes/redeem", badPass, "X-Forwarded-For", "198.51.100.99")
	if status != http.StatusTooManyRequests {
		t.Fatalf("a new forged address every time escaped the limit: %d %s", status, body)
	}
	_, body = f.do(aud, "GET", "/v1/audit?action=pass.redeem_refused", "")
	if strings.Contains(string(body), "198.51.100.") || !strings.Contains(string(body), `"source":"127.0.0.1"`) {
		t.Fatalf("a forged address reached the audit trail: %s", body)
	}
}

func TestAGuesserSpreadOverManyAddressesIsLimitedPerEnrolment(t *testing.T) {
	f := behindProxy(t, "127.0.0.0/8")
	uid, _, _ := f.victim()
	_, body := f.do(admin, "POST", "/v1/enrolments", `{"user":"`+uid+`","kind":"test"}`)
	var en api.Enrolment
	if err := json.Unmarshal(body, &en); err != nil || en.Code == "" {
		t.Fatalf("creating an enrolment: %s", body)
	}
	guess := `{"code":"` + en.ID + `.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}`
	for i := 1; i <= 20; i++ {
		xff := fmt.Sprintf("192.0.2.%d", i)
		if status, body, _ := f.send("", "POST", "/v1/enrolments/redeem", guess, "X-Forwarded-For", xff); status != http.StatusUnauthorized {
			t.Fatalf("guess %d: %d %s", i, status, body)
		}
	}
	status, body, _ := f.send("", "POST", "/v1/enrolments/redeem", `{"code":"`+en.Code+`"}`, "X-Forwarded-For", "192.0.2.200")
	if p := problemOf(t, body); status != http.StatusTooManyRequests || !strings.Contains(p.Detail, "from all addresses together") {
		t.Fatalf("the 21st attempt on one enrolment, from a fresh address: %d %s", status, body)
	}
	if status, body, _ := f.send("", "POST", "/v1/passes/redeem", badPass, "X-Forwarded-For", "192.0.2.200"); status != http.StatusUnauthorized {
		t.Fatalf("the fresh address was refused for a pass, which aims at no enrolment: %d %s", status, body)
	}
}

// send is do with request headers (name, value pairs); it also returns the
// answer's headers.
func (f *fixture) send(role, method, path, body string, headers ...string) (int, []byte, http.Header) {
	f.t.Helper()
	req, _ := http.NewRequest(method, f.srv.URL+path, strings.NewReader(body))
	if role != "" {
		req.Header.Set("Authorization", "Bearer "+f.tokens[role])
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b, resp.Header
}

func problemOf(t *testing.T, body []byte) api.Problem {
	t.Helper()
	var p api.Problem
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatalf("not a problem: %s", body)
	}
	return p
}
