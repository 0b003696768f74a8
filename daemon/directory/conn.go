package directory

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"

	"github.com/go-ldap/ldap/v3"
)

// Errors of a directory read. Each comes wrapped with what was being done
// and what to check.
var (
	// ErrUnreachable: the directory could not be reached, or went away
	// during the read. Nothing of the read was applied.
	ErrUnreachable = errors.New("directory unreachable")
	// ErrBind: the directory refused the bind (wrong DN or password).
	ErrBind = errors.New("directory refused the bind")
	// ErrTLS: the directory's certificate was not trusted or TLS failed.
	ErrTLS = errors.New("TLS with the directory failed")
	// ErrSearch: the directory refused or failed a search.
	ErrSearch = errors.New("directory search failed")
)

// adCapability is the rootDSE supportedCapabilities OID of Active
// Directory (LDAP_CAP_ACTIVE_DIRECTORY_OID), which offers
// LDAP_MATCHING_RULE_IN_CHAIN.
const adCapability = "1.2.840.113556.1.4.800"

// conn is one bound connection to the directory.
type conn struct {
	*ldap.Conn
	cfg      *LDAPConfig
	pageHook func(entries int) // after each page (progress, tests)
}

// tlsConfig builds the TLS settings: the CA file's roots (or the
// system's) and the name the certificate must carry.
func (c *LDAPConfig) tlsConfig() (*tls.Config, error) {
	u, err := url.Parse(c.URL)
	if err != nil {
		return nil, err
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: u.Hostname()}
	if c.ServerName != "" {
		tc.ServerName = c.ServerName
	}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("reading ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca_file %s holds no PEM certificate", c.CAFile)
		}
		tc.RootCAs = pool
	}
	return tc, nil
}

// dial connects, secures and binds. Errors: ErrUnreachable, ErrTLS,
// ErrBind (each wrapped with the cause and what to check).
func (c *LDAPConfig) dial(ctx context.Context) (*conn, error) {
	tc, err := c.tlsConfig()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrTLS, err)
	}
	d := &net.Dialer{Timeout: c.Timeout.Duration}
	if dl, ok := ctx.Deadline(); ok {
		d.Deadline = dl
	}
	lc, err := ldap.DialURL(c.URL, ldap.DialWithDialer(d), ldap.DialWithTLSConfig(tc))
	if err != nil {
		return nil, classify(fmt.Sprintf("connecting to %s", c.URL), err)
	}
	lc.SetTimeout(c.Timeout.Duration)
	if c.StartTLS {
		if err := lc.StartTLS(tc); err != nil {
			lc.Close()
			return nil, fmt.Errorf("%w: StartTLS with %s: %v (check ca_file and server_name)", ErrTLS, c.URL, err)
		}
	}
	if c.BindDN != "" {
		pw, err := readPassword(c.BindPasswordFile)
		if err != nil {
			lc.Close()
			return nil, fmt.Errorf("%w: bind_password_file: %v", ErrBind, err)
		}
		if err := lc.Bind(c.BindDN, pw); err != nil {
			lc.Close()
			if ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidCredentials) {
				return nil, fmt.Errorf("%w: binding as %s: invalid credentials; check bind_dn and the password in %s", ErrBind, c.BindDN, c.BindPasswordFile)
			}
			return nil, classify("binding as "+c.BindDN, err)
		}
	}
	return &conn{Conn: lc, cfg: c}, nil
}

// classify wraps an LDAP error with the sentinel it stands for.
func classify(doing string, err error) error {
	var le *ldap.Error
	var ue x509.UnknownAuthorityError
	var he x509.HostnameError
	var ce *tls.CertificateVerificationError
	switch {
	case errors.As(err, &ue), errors.As(err, &he), errors.As(err, &ce):
		return fmt.Errorf("%w: %s: %v (check ca_file and server_name)", ErrTLS, doing, err)
	case errors.As(err, &le) && le.ResultCode == ldap.ErrorNetwork, errors.Is(err, net.ErrClosed):
		return fmt.Errorf("%w: %s: %v", ErrUnreachable, doing, err)
	case errors.As(err, &le) && le.ResultCode < ldap.ErrorNetwork:
		if le.ResultCode == ldap.LDAPResultUnavailable || le.ResultCode == ldap.LDAPResultBusy {
			return fmt.Errorf("%w: %s: %v", ErrUnreachable, doing, err)
		}
		return fmt.Errorf("%w: %s: %w", ErrSearch, doing, err)
	}
	return fmt.Errorf("%w: %s: %v", ErrUnreachable, doing, err)
}

// isAD reads the rootDSE and reports whether the server is Active
// Directory, and its highestCommittedUSN (AD's change counter).
func (c *conn) rootDSE() (ad bool, usn string, err error) {
	req := ldap.NewSearchRequest("", ldap.ScopeBaseObject, ldap.NeverDerefAliases, 1, 0, false,
		"(objectClass=*)", []string{"supportedCapabilities", "highestCommittedUSN"}, nil)
	res, err := c.Search(req)
	if err != nil {
		return false, "", classify("reading the root DSE", err)
	}
	if len(res.Entries) == 0 {
		return false, "", nil
	}
	e := res.Entries[0]
	return slices.Contains(e.GetAttributeValues("supportedCapabilities"), adCapability), e.GetAttributeValue("highestCommittedUSN"), nil
}

// search runs a paged search (RFC 2696) under base and calls fn for each
// entry. A search cut off half way is an error, never a short result.
func (c *conn) search(ctx context.Context, base, filter string, attrs []string, fn func(*ldap.Entry) error) error {
	paging := ldap.NewControlPaging(uint32(c.cfg.PageSize))
	n := 0
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		req := ldap.NewSearchRequest(base, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false, filter, attrs, []ldap.Control{paging})
		res, err := c.Search(req)
		if err != nil {
			return classify(fmt.Sprintf("searching %s for %s", base, filter), err)
		}
		for _, e := range res.Entries {
			if err := fn(e); err != nil {
				return err
			}
		}
		n += len(res.Entries)
		if c.pageHook != nil {
			c.pageHook(n)
		}
		ctrl, ok := ldap.FindControl(res.Controls, ldap.ControlTypePaging).(*ldap.ControlPaging)
		if !ok || len(ctrl.Cookie) == 0 {
			return nil
		}
		paging.SetCookie(ctrl.Cookie)
	}
}
