package daemon

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/keyfleet/keyfleet/daemon/events"
	"github.com/keyfleet/keyfleet/daemon/httpapi"
)

// Audit actions of a reload.
const (
	ActionConfigReload       = "config.reload"
	ActionConfigReloadFailed = "config.reload_failed"
)

// ReloadResult says what a reload applied.
type ReloadResult struct {
	PIVRoots, FIDO2Roots int // extra attestation roots now trusted
	// RootsSHA256 are those roots' SHA-256 (hex), PIV first.
	RootsSHA256    []string
	Sinks          events.ReloadResult
	TLSCert        string    // the certificate file now served
	TLSNotAfter    time.Time // its expiry
	TLSFingerprint string    // its SHA-256, colon hex
	// NeedsRestart names the settings that changed but apply only when
	// keyfleetd starts (listen, store, fido2, …); they keep their old values.
	NeedsRestart []string
}

// Reload reads the configuration again with load and applies, without a
// restart, what can change while keyfleetd serves: the extra attestation
// roots (attestation.*), the event sinks (events.sinks) and the TLS
// certificate and key (tls_cert, tls_key: new connections get the new
// one). Everything is read and checked before anything changes, so a
// configuration that fails (a file missing, a certificate that does not
// match its key, an invalid sink) changes nothing. Either outcome is
// audited: config.reload with what changed, or config.reload_failed with
// the reason. keyfleetd serve calls it on SIGHUP.
func (s *Server) Reload(ctx context.Context, load func() (Config, error)) (ReloadResult, error) {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	res, err := s.reload(load)
	if err != nil {
		s.log.Error("configuration reload failed; nothing changed", "err", err)
		s.audit(ctx, ActionConfigReloadFailed, map[string]string{"error": truncate(err.Error(), 1000)})
		return res, err
	}
	s.log.Info("configuration reloaded", "piv_roots", res.PIVRoots, "fido2_roots", res.FIDO2Roots,
		"tls_cert", res.TLSCert, "tls_not_after", res.TLSNotAfter, "needs_restart", res.NeedsRestart)
	s.audit(ctx, ActionConfigReload, res.auditExtra())
	return res, nil
}

func (s *Server) reload(load func() (Config, error)) (ReloadResult, error) {
	var res ReloadResult
	cfg, err := load()
	if err != nil {
		return res, err
	}
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return res, err
	}
	roots, err := loadRoots(cfg)
	if err != nil {
		return res, err
	}
	cert, err := loadCertificate(cfg)
	if err != nil {
		return res, err
	}
	// The sinks go last: their reload changes nothing when it fails, and
	// the roots and certificate below cannot.
	if res.Sinks, err = s.events.Reload(cfg.Events); err != nil {
		return res, err
	}
	s.roots.Store(&roots)
	s.cert.Store(cert)
	res.NeedsRestart = append(restartSettings(s.cfg, cfg), res.Sinks.NeedsRestart...)
	s.cfg.Attestation, s.cfg.TLSCert, s.cfg.TLSKey, s.cfg.Events.Sinks = cfg.Attestation, cfg.TLSCert, cfg.TLSKey, cfg.Events.Sinks
	res.PIVRoots, res.FIDO2Roots = len(roots.PIV), len(roots.FIDO2)
	res.RootsSHA256 = append(rootFingerprints(roots.PIV), rootFingerprints(roots.FIDO2)...)
	res.TLSCert, res.TLSNotAfter, res.TLSFingerprint = cfg.TLSCert, cert.Leaf.NotAfter, Fingerprint(cert.Leaf.Raw)
	return res, nil
}

// restartSettings names the top-level settings (and events' own) that
// differ between old and cfg, other than those a reload applies.
func restartSettings(old, cfg Config) []string {
	var out []string
	ov, nv, t := reflect.ValueOf(old), reflect.ValueOf(cfg), reflect.TypeOf(cfg)
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		switch name {
		case "attestation", "tls_cert", "tls_key", "events", "-", "":
			continue
		}
		if !reflect.DeepEqual(ov.Field(i).Interface(), nv.Field(i).Interface()) {
			out = append(out, name)
		}
	}
	return out
}

func (r ReloadResult) auditExtra() map[string]string {
	return map[string]string{
		"piv_roots":       strconv.Itoa(r.PIVRoots),
		"fido2_roots":     strconv.Itoa(r.FIDO2Roots),
		"roots_sha256":    strings.Join(r.RootsSHA256, ","),
		"sinks_added":     strings.Join(r.Sinks.Added, ","),
		"sinks_changed":   strings.Join(r.Sinks.Changed, ","),
		"sinks_removed":   strings.Join(r.Sinks.Removed, ","),
		"tls_cert":        r.TLSCert,
		"tls_cert_sha256": r.TLSFingerprint,
		"tls_not_after":   r.TLSNotAfter.UTC().Format(time.RFC3339),
		"needs_restart":   strings.Join(r.NeedsRestart, ","),
	}
}

// audit records a daemon event about its configuration; a failure to
// record it is logged (the store refuses writes: /readyz says why).
func (s *Server) audit(ctx context.Context, action string, extra map[string]string) {
	if err := s.svc.RecordEvent(ctx, action, "config", "keyfleetd", extra); err != nil {
		s.log.Error("auditing the configuration reload", "action", action, "err", err)
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// loadRoots reads the extra attestation roots cfg names.
func loadRoots(cfg Config) (httpapi.AttestRoots, error) {
	var r httpapi.AttestRoots
	var err error
	if r.PIV, err = readRoots("attestation.piv_roots", cfg.Attestation.PIVRoots); err != nil {
		return r, err
	}
	if r.FIDO2, err = readRoots("attestation.fido2_roots", cfg.Attestation.FIDO2Roots); err != nil {
		return r, err
	}
	return r, nil
}

// attestRoots are the extra attestation roots trusted now.
func (s *Server) attestRoots() httpapi.AttestRoots {
	if r := s.roots.Load(); r != nil {
		return *r
	}
	return httpapi.AttestRoots{}
}

// loadCertificate reads the TLS certificate and its key.
func loadCertificate(cfg Config) (*tls.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
	if err != nil {
		return nil, fmt.Errorf("loading TLS certificate %s: %w", cfg.TLSCert, err)
	}
	if cert.Leaf == nil {
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("loading TLS certificate %s: %w", cfg.TLSCert, err)
		}
	}
	return &cert, nil
}

// certificate serves the current TLS certificate to each new connection.
func (s *Server) certificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return s.cert.Load(), nil
}

// rootFingerprints are the SHA-256 of each root, hex, for logs and audit.
func rootFingerprints(roots []*x509.Certificate) []string {
	out := make([]string, len(roots))
	for i, r := range roots {
		sum := sha256.Sum256(r.Raw)
		out[i] = hex.EncodeToString(sum[:])
	}
	return out
}
