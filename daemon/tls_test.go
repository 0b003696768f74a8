package daemon_test

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestTLS12OffersOnlyAEADSuites(t *testing.T) {
	d := newEdgeDaemon(t)
	pem, err := os.ReadFile(filepath.Join(d.dir, "tls", "cert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	host := strings.TrimPrefix(d.url, "https://")
	for _, tc := range []struct {
		name    string
		suite   uint16
		version uint16
		ok      bool
	}{
		{"TLS 1.2 with only CBC-SHA1", tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.VersionTLS12, false},
		{"TLS 1.2 with only CBC-SHA256", tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256, tls.VersionTLS12, false},
		{"TLS 1.2 with only AES-256-CBC-SHA1", tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA, tls.VersionTLS12, false},
		{"TLS 1.2 with AES-128-GCM", tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.VersionTLS12, true},
		{"TLS 1.2 with AES-256-GCM", tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, tls.VersionTLS12, true},
		{"TLS 1.2 with ChaCha20-Poly1305", tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, tls.VersionTLS12, true},
		{"TLS 1.1", tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.VersionTLS11, false},
		{"TLS 1.3", 0, tls.VersionTLS13, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := &tls.Config{RootCAs: roots, ServerName: "localhost", MinVersion: tc.version, MaxVersion: tc.version}
			if tc.suite != 0 {
				cfg.CipherSuites = []uint16{tc.suite}
			}
			conn, err := tls.Dial("tcp", host, cfg)
			if err == nil {
				defer conn.Close()
			}
			if ok := err == nil; ok != tc.ok {
				t.Fatalf("handshake succeeded = %v (%v), want %v", ok, err, tc.ok)
			}
			if tc.ok && tc.suite != 0 && conn.ConnectionState().CipherSuite != tc.suite {
				t.Fatalf("negotiated %s", tls.CipherSuiteName(conn.ConnectionState().CipherSuite))
			}
		})
	}
}
