package cli

import (
	"io"
	"strings"
)

// SavedLogin is what `keyfleet login` saved in the configuration file:
// keyfleetd's URL, the token and the CA certificate to trust.
// keyfleet-agent reads it too, so one login serves both programs.
type SavedLogin struct {
	Server string
	Token  string
	CAPEM  []byte
	// Path is the configuration file's path, read or not.
	Path string
}

// LoadSavedLogin reads the configuration file ($KEYFLEET_CONFIG, or
// keyfleet/config.json in the user configuration folder). A missing file
// is a zero SavedLogin (with Path set) and no error; a file others may read
// draws a warning on stderr. Errors say what to do next. env looks up
// environment variables.
func LoadSavedLogin(env func(string) string, stderr io.Writer) (SavedLogin, error) {
	a := &app{env: env, stderr: stderr}
	cfg, path, err := a.loadConfig()
	if err != nil {
		return SavedLogin{Path: path}, err
	}
	s := SavedLogin{Server: cfg.Server, Token: strings.TrimSpace(cfg.Token), Path: path}
	if cfg.CAPEM != "" {
		s.CAPEM = []byte(cfg.CAPEM)
	}
	return s, nil
}

// SameServer reports whether two keyfleetd URLs name one server as the
// client reads them: https by default, a trailing slash and the case of
// scheme and host ignored. A saved token and CA go only to the server
// they were saved for, as SameServer judges (keyfleet and keyfleet-agent
// alike).
func SameServer(a, b string) bool {
	norm := func(s string) string {
		s = strings.TrimRight(strings.TrimSpace(s), "/")
		if !strings.Contains(s, "://") {
			s = "https://" + s
		}
		return s
	}
	return strings.EqualFold(norm(a), norm(b))
}
