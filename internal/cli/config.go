package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/keyfleet/keyfleet/api/client"
	"github.com/keyfleet/keyfleet/internal/atomicfile"
)

// Environment variables the CLI reads.
const (
	EnvConfig = "KEYFLEET_CONFIG"
	EnvServer = "KEYFLEET_SERVER"
	EnvToken  = "KEYFLEET_TOKEN"
	EnvCA     = "KEYFLEET_CA"
)

// fileConfig is the configuration file that `keyfleet login` writes. It
// holds a secret, so it is written 0600 in a 0700 folder.
type fileConfig struct {
	Server string `json:"server"`
	Token  string `json:"token"`
	CAPEM  string `json:"ca_pem,omitempty"`
}

// configPath returns $KEYFLEET_CONFIG, or config.json in the keyfleet
// folder of the user's configuration directory. own says whether the
// folder is keyfleet's own, whose mode login may tighten.
func (a *app) configPath() (path string, own bool, err error) {
	if p := a.env(EnvConfig); p != "" {
		return p, false, nil
	}
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", false, fail(fmt.Errorf("finding the configuration folder: %w", err),
			"set "+EnvConfig+" to the path of the configuration file")
	}
	return filepath.Join(dir, "keyfleet", "config.json"), true, nil
}

// loadConfig reads the configuration file; a missing file is an empty
// configuration.
func (a *app) loadConfig() (fileConfig, string, error) {
	var cfg fileConfig
	path, _, err := a.configPath()
	if err != nil {
		return cfg, "", err
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return cfg, path, nil
	}
	if err != nil {
		return cfg, path, fail(fmt.Errorf("reading %s: %w", path, err), "check its permissions, or set "+EnvConfig)
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		return cfg, path, fail(fmt.Errorf("reading %s: %w", path, err), "run keyfleet login again to rewrite it")
	}
	a.warnLoosePermissions(path)
	return cfg, path, nil
}

func (a *app) warnLoosePermissions(path string) {
	st, err := os.Stat(path)
	if err != nil || runtime.GOOS == "windows" || st.Mode().Perm()&0o077 == 0 {
		return
	}
	fmt.Fprintf(a.stderr, "warning: %s holds a token and is readable by others (mode %04o); run chmod 600 %s\n",
		path, st.Mode().Perm(), path)
}

// saveConfig writes the configuration file atomically, 0600 in a 0700
// folder.
func (a *app) saveConfig(cfg fileConfig) (string, error) {
	path, own, err := a.configPath()
	if err != nil {
		return "", err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fail(fmt.Errorf("creating %s: %w", dir, err), "check its parent's permissions, or set "+EnvConfig)
	}
	if own {
		if err := os.Chmod(dir, 0o700); err != nil {
			return "", fail(fmt.Errorf("securing %s: %w", dir, err), "make it yours with mode 0700")
		}
	}
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return "", fmt.Errorf("encoding configuration: %w", err)
	}
	if err := atomicfile.Write(path, append(b, '\n')); err != nil {
		return "", fail(fmt.Errorf("writing %s: %w", path, err), "check the folder's permissions, or set "+EnvConfig)
	}
	return path, nil
}

// clientConfig merges the configuration file and the environment. The
// saved token and CA go only with the saved server: KEYFLEET_SERVER naming
// another server needs a token of its own (KEYFLEET_TOKEN, or a login
// there), and the saved token is never sent to it.
func (a *app) clientConfig() (client.Config, error) {
	saved, _, err := a.loadConfig()
	if err != nil {
		return client.Config{}, err
	}
	cc := client.Config{Server: firstOf(a.env(EnvServer), saved.Server), UserAgent: userAgent}
	fromSaved := saved.Server != "" && SameServer(cc.Server, saved.Server)
	switch v := a.env(EnvCA); {
	case v != "":
		if cc.CAPEM, err = readCA(v, EnvCA); err != nil {
			return client.Config{}, err
		}
	case fromSaved && saved.CAPEM != "":
		cc.CAPEM = []byte(saved.CAPEM)
	}
	switch v := strings.TrimSpace(a.env(EnvToken)); {
	case v != "":
		cc.Token = v
	case fromSaved:
		cc.Token = strings.TrimSpace(saved.Token)
	case cc.Server != "" && saved.Token != "":
		return client.Config{}, errOtherServer(cc.Server, saved.Server)
	}
	if cc.Server == "" || cc.Token == "" {
		return client.Config{}, &cliError{code: ExitAuth, err: errors.New("not logged in"),
			hint: "sign in with your key: keyfleet login --server URL --user NAME (or --token-file FILE), or set " + EnvServer + " and " + EnvToken}
	}
	return cc, nil
}

// errOtherServer is the refusal to send the token saved for one server to
// another.
func errOtherServer(server, savedFor string) error {
	return &cliError{code: ExitAuth,
		err: fmt.Errorf("no token for %s: the saved login is for %s, and its token goes only to the server that issued it", server, savedFor),
		hint: "sign in to " + server + ": keyfleet login --server " + server + " --user NAME (or --token-file FILE); or give a token for it in " +
			EnvToken + "; or unset " + EnvServer + " to use the saved login"}
}

// userAgent identifies the CLI to the daemon.
const userAgent = "keyfleet-cli"

// client returns an API client configured from the file and environment.
func (a *app) client() (*client.Client, error) {
	cc, err := a.clientConfig()
	if err != nil {
		return nil, err
	}
	c, err := client.New(cc)
	if err != nil {
		return nil, fail(err, "check "+EnvServer+", "+EnvToken+" and "+EnvCA+", or run keyfleet login again")
	}
	return c, nil
}

// readCA reads a PEM CA certificate file named by source (a flag or an
// environment variable).
func readCA(path, source string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fail(fmt.Errorf("reading CA certificate: %w", err),
			"give "+source+" the certificate path that `keyfleetd init` printed")
	}
	if !strings.Contains(string(b), "-----BEGIN CERTIFICATE-----") {
		return nil, fail(fmt.Errorf("%s holds no PEM certificate", path),
			"give "+source+" the certificate path that `keyfleetd init` printed")
	}
	return b, nil
}
