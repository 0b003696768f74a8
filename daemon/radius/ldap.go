package radius

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"

	"github.com/go-ldap/ldap/v3"
)

// Errors of a FirstFactor.
var (
	// ErrBadPassword: the password is wrong, or the user is unknown to
	// the directory (the two are not told apart).
	ErrBadPassword = errors.New("wrong user name or password")
	// ErrDirectoryUnavailable: the directory could not be asked.
	ErrDirectoryUnavailable = errors.New("directory unavailable")
)

// LDAP checks a password by binding to the directory as the user: the
// directory's own rules (password expiry, account lockout, disabled
// accounts) then apply. The directory issue's daemon/directory will own
// synchronisation; this is only the bind.
type LDAP struct {
	cfg LDAPConfig
	tls *tls.Config
}

var _ FirstFactor = (*LDAP)(nil)

// NewLDAP validates cfg (after Config.Defaults) and reads its CA file.
func NewLDAP(cfg LDAPConfig) (*LDAP, error) {
	if errs := cfg.validate(); len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	u, _ := url.Parse(cfg.URL)
	tc := &tls.Config{ServerName: u.Hostname(), MinVersion: tls.VersionTLS12}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("radius.ldap.ca_file: %w", err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("radius.ldap.ca_file: %s holds no PEM certificate", cfg.CAFile)
		}
	}
	return &LDAP{cfg: cfg, tls: tc}, nil
}

// Check binds as user with password. An empty password is refused before
// anything is sent: LDAP servers treat a bind with a name and no password
// as an anonymous bind that succeeds (RFC 4513 §5.1.2). Errors:
// ErrBadPassword, or an error wrapping ErrDirectoryUnavailable.
func (l *LDAP) Check(ctx context.Context, user, password string) error {
	if password == "" || user == "" {
		return ErrBadPassword
	}
	d := &net.Dialer{Timeout: l.cfg.Timeout.Duration}
	conn, err := ldap.DialURL(l.cfg.URL, ldap.DialWithDialer(d), ldap.DialWithTLSConfig(l.tls))
	if err != nil {
		return fmt.Errorf("%w: %v", ErrDirectoryUnavailable, err)
	}
	defer conn.Close()
	conn.SetTimeout(l.cfg.Timeout.Duration)
	if l.cfg.StartTLS {
		if err := conn.StartTLS(l.tls); err != nil {
			return fmt.Errorf("%w: StartTLS: %v", ErrDirectoryUnavailable, err)
		}
	}
	err = conn.Bind(l.bindName(user), password)
	switch {
	case err == nil:
		return nil
	case ldap.IsErrorAnyOf(err, ldap.LDAPResultInvalidCredentials, ldap.LDAPResultInvalidDNSyntax,
		ldap.LDAPResultNoSuchObject, ldap.LDAPResultUnwillingToPerform, ldap.LDAPResultInappropriateAuthentication):
		return ErrBadPassword
	default:
		return fmt.Errorf("%w: bind: %v", ErrDirectoryUnavailable, err)
	}
}

// bindName puts the user into the configured template, escaped so that
// a name cannot change the DN's structure ("x,ou=admins").
func (l *LDAP) bindName(user string) string {
	return strings.Replace(l.cfg.BindDN, "{user}", ldap.EscapeDN(user), 1)
}
