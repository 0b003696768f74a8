package daemon

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// serverTLS is keyfleetd's TLS configuration: TLS 1.2 or later, and for
// TLS 1.2 only ECDHE key exchange with AEAD ciphers (AES-GCM,
// ChaCha20-Poly1305). The CBC-mode suites Go still enables by default
// (with SHA-1 or SHA-256 MACs) are left out: they are the ones with a
// history of padding-oracle and timing attacks (Lucky Thirteen), and every
// client that speaks TLS 1.2 also speaks GCM. TLS 1.3's suites are all
// AEAD and are not configurable.
func serverTLS(getCert func(*tls.ClientHelloInfo) (*tls.Certificate, error)) *tls.Config {
	return &tls.Config{
		GetCertificate: getCert, // replaced on SIGHUP (reload.go)
		MinVersion:     tls.VersionTLS12,
		CipherSuites: []uint16{
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
			tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
		},
	}
}

// initTLS copies a given certificate pair into the data folder, or makes a
// self-signed one for localhost. It returns the certificate's path and
// fingerprint.
func initTLS(o InitOptions) (string, string, error) {
	certPath, keyPath := filepath.Join(o.Dir, "tls", "cert.pem"), filepath.Join(o.Dir, "tls", "key.pem")
	if err := os.MkdirAll(filepath.Dir(certPath), 0o700); err != nil {
		return "", "", err
	}
	var certPEM, keyPEM []byte
	var err error
	if o.TLSCert != "" || o.TLSKey != "" {
		certPEM, keyPEM, err = readPair(o.TLSCert, o.TLSKey)
	} else {
		certPEM, keyPEM, err = selfSigned(time.Now())
	}
	if err != nil {
		return "", "", err
	}
	if err := os.WriteFile(certPath, certPEM, 0o644); err != nil {
		return "", "", err
	}
	if err := os.WriteFile(keyPath, keyPEM, 0o600); err != nil {
		return "", "", err
	}
	block, _ := pem.Decode(certPEM)
	return certPath, Fingerprint(block.Bytes), nil
}

func readPair(certFile, keyFile string) ([]byte, []byte, error) {
	if certFile == "" || keyFile == "" {
		return nil, nil, fmt.Errorf("give both --tls-cert and --tls-key, or neither for a self-signed localhost certificate")
	}
	c, err := os.ReadFile(certFile)
	if err != nil {
		return nil, nil, err
	}
	k, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, nil, err
	}
	if _, err := tls.X509KeyPair(c, k); err != nil {
		return nil, nil, fmt.Errorf("%s and %s are not a matching PEM certificate and key: %w", certFile, keyFile, err)
	}
	return c, k, nil
}

// selfSigned makes an ECDSA P-256 certificate for localhost, 127.0.0.1 and
// ::1, valid for two years.
func selfSigned(now time.Time) ([]byte, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "keyfleetd on localhost", Organization: []string{"keyfleet"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(2 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), nil
}
