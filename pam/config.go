package pam

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"
)

// Config is the module's arguments in the PAM service file, after
// helper= (which the module itself reads):
//
//	auth required pam_keyfleet.so url=https://keyfleet.example:8443 ca_file=/etc/keyfleet/ca.pem fallback_group=netadmins
//
// The zero value is not usable: URL is required.
type Config struct {
	// URL is keyfleetd's address (https only).
	URL string
	// TokenFile holds a service token (role service); it must belong to
	// root and be readable by root only (default /etc/keyfleet/pam.token).
	TokenFile string
	// CAFile is a PEM bundle to trust for keyfleetd's certificate
	// (default: the system roots).
	CAFile string
	// Timeout bounds each call to keyfleetd (default 10s).
	Timeout time.Duration
	// FallbackGroups are Unix groups whose members are let in without a
	// second factor while keyfleetd cannot answer. Empty: nobody is
	// (fail closed).
	FallbackGroups []string
	// FirstLogin asks keyfleetd for a first-login pass for a user who
	// must enrol and has none. Only when a module before this one in the
	// stack checked the first factor (requisite), or sshd did (publickey).
	FirstLogin bool
	// AllowUnknown lets in users keyfleetd does not know (local accounts)
	// instead of refusing them.
	AllowUnknown bool
}

// DefaultTokenFile is where the service token is read from by default.
const DefaultTokenFile = "/etc/keyfleet/pam.token"

// ParseArgs reads the module's arguments ("key=value" and flags). Unknown
// ones are errors, so a misspelt setting is not silently ignored.
func ParseArgs(args []string) (Config, error) {
	c := Config{TokenFile: DefaultTokenFile, Timeout: 10 * time.Second}
	var errs []error
	for _, a := range args {
		k, v, _ := strings.Cut(a, "=")
		switch k {
		case "url":
			c.URL = v
		case "token_file":
			c.TokenFile = v
		case "ca_file":
			c.CAFile = v
		case "timeout":
			d, err := time.ParseDuration(v)
			if err != nil || d < 100*time.Millisecond || d > time.Minute {
				errs = append(errs, fmt.Errorf("timeout=%s: want a duration from 100ms to 1m, like 10s", v))
			}
			c.Timeout = d
		case "fallback_group":
			c.FallbackGroups = append(c.FallbackGroups, strings.Split(v, ",")...)
		case "first_login":
			c.FirstLogin = true
		case "allow_unknown":
			c.AllowUnknown = true
		case "debug":
		default:
			errs = append(errs, fmt.Errorf("unknown argument %q (see docs/pam.md)", a))
		}
	}
	if !strings.HasPrefix(c.URL, "https://") {
		errs = append(errs, fmt.Errorf("url=%q: give keyfleetd's https:// address", c.URL))
	}
	return c, errors.Join(errs...)
}

// readToken reads the service token from a file that belongs to root and
// that nobody else may read or write: anyone who reads it can verify
// codes as this host.
func readToken(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || st.Uid != 0 || fi.Mode().Perm()&0o077 != 0 || !fi.Mode().IsRegular() {
		return "", fmt.Errorf("%s must be a file of root's with mode 0600 (chown root:root; chmod 600)", path)
	}
	b := make([]byte, 4096)
	n, _ := f.Read(b)
	tok := strings.TrimSpace(string(b[:n]))
	if tok == "" || strings.ContainsAny(tok, " \t\r\n") {
		return "", fmt.Errorf("%s must hold one token on one line", path)
	}
	return tok, nil
}
