package push

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

type received struct {
	path   string
	header http.Header
	body   string
}

func relay(t *testing.T) (*httptest.Server, chan received) {
	got := make(chan received, 8)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- received{r.URL.Path, r.Header.Clone(), string(b)}
	}))
	t.Cleanup(srv.Close)
	return srv, got
}

func wait(t *testing.T, got chan received) received {
	t.Helper()
	select {
	case r := <-got:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("the relay got nothing")
	}
	return received{}
}

// TestRelaysGetANoticeThatCannotAnswer: an organisation routes pushes
// through a webhook and an ntfy server of its own. Each gets who is
// signing in to what, from where, and nothing a relay could answer with:
// no number, no choices, no verification id.
func TestRelaysGetANoticeThatCannotAnswer(t *testing.T) {
	hook, hookGot := relay(t)
	nt, ntGot := relay(t)
	secret := "push-hook-secret-0123456789"
	e := newEnv(t, Config{Gateways: []GatewayConfig{
		{Name: "hook", Type: TypeWebhook, URL: hook.URL + "/in", Secret: secret, AllowHTTP: true},
		{Name: "phones", Type: TypeNtfy, URL: nt.URL, Token: "tk_ntfy", Click: "https://keyfleet.example.org/push/", AllowHTTP: true},
	}})
	c := e.enrol(e.user("nina"), nil)
	p := e.mustBegin(c.user)
	d := c.delivery(p)

	h := wait(t, hookGot)
	var n Notice
	if err := json.Unmarshal([]byte(h.body), &n); err != nil || n.User != "nina" || n.Application != "VPN" || n.Address != "203.0.113.7" || n.Device != c.dev.FactorID {
		t.Fatalf("webhook notice %s (%v)", h.body, err)
	}
	ts, _ := strconv.ParseInt(strings.TrimPrefix(strings.Split(h.header.Get(HeaderSignature), ",")[0], "t="), 10, 64)
	if sig := h.header.Get(HeaderSignature); sig == "" || SignNotice([]byte(secret), time.Unix(ts, 0), []byte(h.body)) != sig {
		t.Fatalf("webhook signature %q does not verify", sig)
	}
	n2 := wait(t, ntGot)
	if n2.path != "/keyfleet-"+c.dev.FactorID || n2.header.Get("Authorization") != "Bearer tk_ntfy" || n2.header.Get("Title") == "" ||
		n2.header.Get("Click") != "https://keyfleet.example.org/push/" || !strings.Contains(n2.body, "nina is signing in to VPN from 203.0.113.7") {
		t.Fatalf("ntfy got %s %v %q", n2.path, n2.header, n2.body)
	}
	var fields map[string]any
	json.Unmarshal([]byte(h.body), &fields)
	for k := range fields {
		if !slices.Contains([]string{"type", "device", "user", "application", "address", "time", "deadline"}, k) {
			t.Errorf("the webhook notice carries %q", k)
		}
	}
	want := "nina is signing in to VPN from 203.0.113.7. Open keyfleet to answer before " + d.Deadline.UTC().Format("15:04:05") + " UTC."
	if n2.body != want {
		t.Errorf("ntfy's message %q, want exactly %q", n2.body, want)
	}
	for where, text := range map[string]string{"the webhook": h.body, "ntfy": n2.body + n2.path + fmt.Sprint(n2.header)} {
		if strings.Contains(text, d.VerificationID) || strings.Contains(text, p.v.ID) {
			t.Errorf("%s carries the verification", where)
		}
	}
}

func TestGatewayConfigIsCheckedWithEveryProblemNamed(t *testing.T) {
	cfg := Config{Gateways: []GatewayConfig{
		{Name: "a", Type: "pager", URL: "https://x.example"},
		{Name: "b", Type: TypeWebhook, URL: "http://x.example", Secret: "0123456789abcdef"},
		{Name: "c", Type: TypeWebhook, URL: "https://x.example", Secret: "short"},
		{Name: "c", Type: TypeNtfy, URL: "https://ntfy.example", Token: "t", TokenFile: "/f"},
	}}
	cfg.Defaults()
	err := cfg.Validate()
	for _, want := range []string{"gateways[0] (a): type", "gateways[1] (b): url", "gateways[2] (c): secret", "gateways[3] (c): give", "gateways[3]: the name \"c\" is used twice"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%v\nwant it to say %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "0123456789abcdef") {
		t.Error("the error shows a secret")
	}
}
