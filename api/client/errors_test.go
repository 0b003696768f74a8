package client_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/api/client"
	"github.com/keyfleet/keyfleet/api/client/clienttest"
)

func TestProblemsBecomeErrors(t *testing.T) {
	tests := []struct {
		name   string
		answer http.HandlerFunc
		slug   string
		is     func(error) bool
	}{
		{"a 404 problem is not found", clienttest.Problem(404, "not-found", "no user bob"), "not-found", client.IsNotFound},
		{"an expired token is unauthenticated", clienttest.Problem(401, "token-expired", "expired"), "token-expired", client.IsUnauthenticated},
		{"a missing role is forbidden", clienttest.Problem(403, "forbidden", "needs admin"), "forbidden", client.IsForbidden},
		{"an illegal transition is a conflict", clienttest.Problem(409, "illegal-transition", "revoked"), "illegal-transition", client.IsConflict},
		{"self-approval is a conflict", clienttest.Problem(409, "self-approval", "yours"), "self-approval", client.IsConflict},
		{"an unknown field is invalid", clienttest.Problem(400, "unknown-field", "nope"), "unknown-field", client.IsInvalid},
		{"a proxy's HTML 502 is unavailable", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusBadGateway)
			_, _ = w.Write([]byte("<h1>bad gateway</h1>"))
		}, "unavailable", func(err error) bool { return client.IsProblem(err, client.SlugUnavailable) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := clienttest.NewServer(t)
			s.Handle("GET /v1/users/{user}", tt.answer)
			_, err := newClient(t, s).GetUser(context.Background(), "bob")
			var p *api.Problem
			if !errors.As(err, &p) {
				t.Fatalf("error %v (%T) is not an *api.Problem", err, err)
			}
			if got := client.Slug(err); got != tt.slug {
				t.Errorf("Slug = %q, want %q", got, tt.slug)
			}
			if !tt.is(err) {
				t.Errorf("helper says no for %v", err)
			}
			if client.IsUnreachable(err) {
				t.Errorf("a problem counts as unreachable")
			}
		})
	}
}

func TestProblemKeepsItsDetails(t *testing.T) {
	s := clienttest.NewServer(t)
	s.Handle("POST /v1/users", clienttest.JSON(422, api.Problem{
		Type: "/problems/validation-failed", Title: "Validation failed", Status: 422,
		Detail: "username is invalid", Fields: map[string]string{"username": "must be lower case"},
	}))
	_, err := newClient(t, s).CreateUser(context.Background(), api.CreateUser{Username: "B!"})
	var p *api.Problem
	if !errors.As(err, &p) || p.Fields["username"] == "" || err.Error() != "username is invalid" {
		t.Fatalf("error = %#v", err)
	}
}

func TestActionsNeedingASecondApproverReturnTheRequest(t *testing.T) {
	s := clienttest.NewServer(t)
	s.Handle("POST /v1/factors/{id}/revoke", clienttest.JSON(http.StatusAccepted, api.Accepted{
		Approval: api.Approval{ID: "apr_1", Action: api.ActionFactorRevoke, State: api.ApprovalPending},
	}))
	s.Handle("DELETE /v1/factors/{id}", clienttest.JSON(http.StatusOK, api.Factor{ID: "fac_1"}))
	c := newClient(t, s)
	a, err := c.RevokeFactor(context.Background(), "fac_1", "lost on a train")
	if err != nil || a.Approval.ID != "apr_1" {
		t.Fatalf("RevokeFactor = %+v, %v", a, err)
	}
	if !strings.Contains(string(s.Last().Body), "lost on a train") {
		t.Errorf("reason not sent: %s", s.Last().Body)
	}
	if _, err := c.DeleteFactor(context.Background(), "fac_1", ""); err == nil || !strings.Contains(err.Error(), "without an approval") {
		t.Fatalf("a 200 to a two-person action gave %v", err)
	}
}

func TestTLSTrustsOnlyTheGivenCA(t *testing.T) {
	s := clienttest.NewServer(t)
	s.Handle("GET /v1/me", clienttest.JSON(200, api.Me{User: api.User{Username: "root"}}))
	tests := []struct {
		name  string
		ca    []byte
		trust bool
	}{
		{"the server's own certificate is trusted", s.CAPEM, true},
		{"the system roots do not know the server", nil, false},
		{"another CA does not sign the server", otherCA(t), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := client.New(client.Config{Server: s.URL, Token: clienttest.Token, CAPEM: tt.ca})
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Me(context.Background())
			if tt.trust {
				if err != nil {
					t.Fatalf("Me: %v", err)
				}
				return
			}
			var te *client.TransportError
			if !errors.As(err, &te) {
				t.Fatalf("error %v (%T) is not a *TransportError", err, err)
			}
			fp := client.Fingerprint(s.Certificate().Raw)
			if te.Fingerprint != fp || !strings.Contains(err.Error(), fp) || !strings.Contains(err.Error(), "--ca") {
				t.Fatalf("message %q lacks the fingerprint %s or the --ca hint", err, fp)
			}
		})
	}
}

func TestAnHTTPClientGetsTheCA(t *testing.T) {
	s := clienttest.NewServer(t)
	s.Handle("GET /v1/me", clienttest.JSON(200, api.Me{}))
	c, err := client.New(client.Config{Server: s.URL, Token: clienttest.Token, CAPEM: s.CAPEM, HTTPClient: &http.Client{}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Me(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestAnUnreachableServerSaysWhatToDo(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	c, err := client.New(client.Config{Server: "https://" + addr})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Me(context.Background())
	want := "cannot reach keyfleetd at https://" + addr + ": connection refused; is keyfleetd running on this machine? start it with 'keyfleetd serve' (in a source checkout: make run)"
	if err == nil || err.Error() != want || !client.IsUnreachable(err) {
		t.Fatalf("error = %v\nwant    %s", err, want)
	}
}

// A production server is not started with make run: the hint for a
// refused connection to another host names the host and port to check.
func TestARemoteServerThatRefusesIsNotToldToMakeRun(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()
	var d net.Dialer // every address leads to a closed port on this machine
	tr := &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return d.DialContext(ctx, network, closed)
	}}
	c, err := client.New(client.Config{Server: "https://keyfleet.example.com:8443", HTTPClient: &http.Client{Transport: tr}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Me(context.Background())
	if err == nil || strings.Contains(err.Error(), "make run") ||
		!strings.HasSuffix(err.Error(), "connection refused; check that keyfleetd is running on keyfleet.example.com and listening on port 8443, and that no firewall blocks the way") {
		t.Fatalf("error = %v", err)
	}
}

func TestACancelledContextIsNotATransportError(t *testing.T) {
	s := clienttest.NewServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := newClient(t, s).Me(ctx)
	if !errors.Is(err, context.Canceled) || client.IsUnreachable(err) {
		t.Fatalf("error = %v", err)
	}
}

func TestExportStreamsNDJSON(t *testing.T) {
	s := clienttest.NewServer(t)
	s.Handle("GET /v1/audit/export", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-ndjson")
		_, _ = w.Write([]byte("{\"seq\":8}\n{\"seq\":9}\n"))
	})
	var b strings.Builder
	if err := newClient(t, s).ExportAudit(context.Background(), 7, &b); err != nil {
		t.Fatal(err)
	}
	if b.String() != "{\"seq\":8}\n{\"seq\":9}\n" || s.Last().Query.Get("after") != "7" {
		t.Fatalf("export = %q, query %v", b.String(), s.Last().Query)
	}
}

// otherCA returns a self-signed CA certificate unrelated to the fake's.
func otherCA(t *testing.T) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "other"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}
