package integration

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/attest/attesttest"
)

// TestSIGHUPReloadsRootsSinksAndTheCertificateWithoutARestart: an operator
// trusts a new attestation root, moves the event file and renews the TLS
// certificate, then sends SIGHUP. The same process serves the new
// certificate, trusts the root and delivers to the new sink; the reload is
// audited. A broken configuration sent next changes nothing and is audited
// as a failure.
func TestSIGHUPReloadsRootsSinksAndTheCertificateWithoutARestart(t *testing.T) {
	dir := initData(t)
	work := t.TempDir()
	oldSink, newSink := filepath.Join(work, "old.jsonl"), filepath.Join(work, "new.jsonl")
	sinks := fmt.Sprintf("events:\n  sinks:\n    - {name: siem, type: file, file: {path: %s}}\n", oldSink)
	writeConfig(t, dir, sinks)
	d := start(t, dir)
	token := adminToken(t, dir)
	pid := d.cmd.Process.Pid
	firstCert := servedCert(t, d.url)

	ca := attesttest.NewCA(t)
	slot, device, _ := ca.MintPIV(attesttest.PIVOptions{Serial: 40000123})
	if code := verifyChain(d, token, slot, device); code != http.StatusUnprocessableEntity {
		t.Fatalf("a chain from a root not yet configured: %d, want 422", code)
	}
	rootFile := filepath.Join(work, "root.pem")
	os.WriteFile(rootFile, ca.RootPEM(), 0o644)
	certFile, keyFile := newServerCert(t, work)
	writeConfig(t, dir, strings.ReplaceAll(sinks, oldSink, newSink)+fmt.Sprintf("attestation:\n  piv_roots: [%s]\ntls_cert: %s\ntls_key: %s\n", rootFile, certFile, keyFile))

	d.http = trusting(t, filepath.Join(dir, "tls", "cert.pem"), certFile)
	d.cmd.Process.Signal(syscall.SIGHUP)
	ev := waitAudit(t, d, token, "config.reload")
	if d.cmd.Process.Pid != pid || d.exited() {
		t.Fatal("keyfleetd restarted")
	}
	if got := servedCert(t, d.url); got == firstCert || got != fingerprintFile(t, certFile) {
		t.Fatalf("new connections get certificate %s, want the renewed one", got)
	}
	if code := verifyChain(d, token, slot, device); code != http.StatusOK {
		t.Fatalf("a chain from the reloaded root: %d, want 200", code)
	}
	if ev.Extra["piv_roots"] != "1" || ev.Extra["sinks_changed"] != "siem" || ev.Extra["tls_cert"] != certFile || ev.Actor.Auth != "system" {
		t.Fatalf("the reload's audit event: %+v", ev)
	}
	before := len(readFile(t, oldSink))
	d.call(token, "POST", "/v1/users", api.CreateUser{Username: "after-reload"}, nil)
	waitFor(t, "the user's event in the new sink", func() bool { return strings.Contains(readFile(t, newSink), "after-reload") })
	if len(readFile(t, oldSink)) != before {
		t.Fatal("the old sink still receives events")
	}

	// A certificate file that is gone: nothing changes, and it is audited.
	os.Remove(certFile)
	d.cmd.Process.Signal(syscall.SIGHUP)
	failed := waitAudit(t, d, token, "config.reload_failed")
	if !strings.Contains(failed.Extra["error"], "loading TLS certificate") {
		t.Fatalf("the failed reload's audit event: %+v", failed)
	}
	if code := verifyChain(d, token, slot, device); code != http.StatusOK || d.exited() {
		t.Fatalf("a failed reload changed the roots or stopped keyfleetd: %d", code)
	}
}

// writeConfig replaces the configuration file init wrote.
func writeConfig(t *testing.T, dir, text string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "keyfleetd.yaml"), []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, p string) string {
	b, _ := os.ReadFile(p)
	return string(b)
}

func (d *daemon) exited() bool {
	select {
	case <-d.done:
		return true
	default:
		return false
	}
}

func verifyChain(d *daemon, token string, slot, device *x509.Certificate) int {
	pemOf := func(c *x509.Certificate) string {
		return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
	}
	return d.call(token, "POST", "/v1/attest/verify", api.AttestRequest{Format: "piv", SlotCert: pemOf(slot), DeviceCert: pemOf(device)}, nil)
}

// waitAudit polls the audit log for the last event with action.
func waitAudit(t *testing.T, d *daemon, token, action string) api.AuditEvent {
	t.Helper()
	var found api.AuditEvent
	waitFor(t, "an audit event "+action, func() bool {
		var page api.Page[api.AuditEvent]
		d.call(token, "GET", "/v1/audit?action="+action+"&limit=100", nil, &page)
		if len(page.Items) == 0 {
			return false
		}
		found = page.Items[len(page.Items)-1]
		return true
	})
	return found
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond) // polling interval
	}
}

// servedCert is the SHA-256 of the certificate a new connection gets.
func servedCert(t *testing.T, url string) string {
	t.Helper()
	conn, err := tls.Dial("tcp", strings.TrimPrefix(url, "https://"), &tls.Config{InsecureSkipVerify: true}) // only reads the certificate
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	sum := sha256.Sum256(conn.ConnectionState().PeerCertificates[0].Raw)
	return fmt.Sprintf("%x", sum)
}

func fingerprintFile(t *testing.T, path string) string {
	b, _ := os.ReadFile(path)
	blk, _ := pem.Decode(b)
	sum := sha256.Sum256(blk.Bytes)
	return fmt.Sprintf("%x", sum)
}

// newServerCert writes a self-signed certificate for localhost and
// 127.0.0.1 and its key.
func newServerCert(t *testing.T, dir string) (string, string) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "localhost (renewed)"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(90 * 24 * time.Hour), DNSNames: []string{"localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	certFile, keyFile := filepath.Join(dir, "renewed.pem"), filepath.Join(dir, "renewed.key")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600)
	return certFile, keyFile
}

// trusting is an HTTPS client that trusts the given certificate files.
func trusting(t *testing.T, files ...string) *http.Client {
	pool := x509.NewCertPool()
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		pool.AppendCertsFromPEM(b)
	}
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
}
