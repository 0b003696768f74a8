package daemon

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/keyfleet/keyfleet/daemon/core"
	"github.com/keyfleet/keyfleet/daemon/seal"
	"github.com/keyfleet/keyfleet/internal/sharefile"
)

// Environment variables that carry the two keys instead of files.
const (
	EnvStoreKey = "KEYFLEET_STORE_KEY"
	EnvSealKey  = "KEYFLEET_SEAL_KEY"
)

// Paths under a data folder.
func storeKeyPath(dir string) string   { return filepath.Join(dir, "keys", "store.key") }
func sealKeyPath(dir string) string    { return filepath.Join(dir, "keys", "seal.key") }
func storeDir(dir string) string       { return filepath.Join(dir, "store") }
func adminTokenPath(dir string) string { return filepath.Join(dir, "admin.token") }

// ConfigPath is the config file serve reads by default.
func ConfigPath(dir string) string { return filepath.Join(dir, "keyfleetd.yaml") }

// InitOptions configures Init.
type InitOptions struct {
	Dir string
	// TLSCert and TLSKey name an existing certificate to use; empty makes a
	// self-signed one for localhost.
	TLSCert, TLSKey string
	// AdminUser is the first founding administrator's username (default
	// "admin"); Admins names further founding administrators. Each gets
	// an onboarding pass for their first security key (DIR/bootstrap/,
	// 0600); the first also gets a command-line token (DIR/admin.token)
	// that expires after TokenTTL (default 24h).
	AdminUser string
	Admins    []string
	TokenTTL  time.Duration
	// BreakGlassShares and BreakGlassThreshold split the break-glass
	// credential (defaults 5 and 3).
	BreakGlassShares, BreakGlassThreshold int
	Getenv                                func(string) string
	// PostgresDSN, if set, puts the store in that PostgreSQL database
	// (store.backend: postgres) instead of DIR/store; the DSN goes to
	// DIR/keys/postgres.dsn (0600).
	PostgresDSN string
	// ConfigFile is where to write the configuration file (default
	// Dir/keyfleetd.yaml). A file already there is kept as it is (a
	// packaged /etc/keyfleet/keyfleetd.yaml).
	ConfigFile string
}

// InitResult says what Init made and where.
type InitResult struct {
	Dir            string
	StoreKeyFile   string // "" when the key came from the environment
	SealKeyFile    string
	TLSCert        string
	TLSFingerprint string // SHA-256 of the certificate, colon hex
	ConfigFile     string // the configuration file written or kept
	AdminUser      string
	AdminTokenFile string
	// FounderPassFiles hold each founding administrator's onboarding pass
	// (username → file), for their first security key.
	FounderPassFiles map[string]string
	TokenExpires     time.Time
	// BreakGlassFiles hold one break-glass share each, for separate holders.
	BreakGlassFiles     []string
	BreakGlassThreshold int
	// CheckpointFile holds the first signed audit checkpoint;
	// CheckpointNote, when set, says why it could not be written there.
	CheckpointFile, CheckpointNote string
	// Postgres: the store is in a PostgreSQL database (--postgres).
	Postgres bool
}

// Init creates a data folder: keys, TLS, the store, the first administrator
// and its token (written once, 0600). It refuses a folder that exists and
// is not empty, and leaves nothing behind if it fails.
func Init(ctx context.Context, o InitOptions) (res InitResult, err error) {
	if o.Dir == "" {
		return res, errors.New("no data folder given: pass --data DIR")
	}
	if o.Getenv == nil {
		o.Getenv = os.Getenv
	}
	if o.AdminUser == "" {
		o.AdminUser = "admin"
	}
	if err := makeDataDir(o.Dir); err != nil {
		return res, err
	}
	defer func() {
		if err != nil {
			os.RemoveAll(o.Dir) // the checkpoint file is written last, by a step that cannot fail Init
		}
	}()
	res = InitResult{Dir: o.Dir, AdminUser: o.AdminUser, AdminTokenFile: adminTokenPath(o.Dir), Postgres: o.PostgresDSN != ""}
	storeKey, f1, err := initKey(o.Getenv, EnvStoreKey, storeKeyPath(o.Dir))
	if err != nil {
		return res, err
	}
	sealKey, f2, err := initKey(o.Getenv, EnvSealKey, sealKeyPath(o.Dir))
	if err != nil {
		return res, err
	}
	res.StoreKeyFile, res.SealKeyFile = f1, f2
	if res.TLSCert, res.TLSFingerprint, err = initTLS(o); err != nil {
		return res, err
	}
	if res.ConfigFile, err = writeInitConfig(o); err != nil {
		return res, err
	}
	if res.CheckpointFile, err = initCheckpointFile(o.Dir, res.ConfigFile); err != nil {
		return res, err
	}
	err = bootstrap(ctx, o, storeKey, sealKey, &res)
	return res, err
}

func makeDataDir(dir string) error {
	entries, err := os.ReadDir(dir)
	switch {
	case err == nil && len(entries) > 0:
		return fmt.Errorf("%s already exists and is not empty; keyfleetd init never overwrites a data folder: serve it with 'keyfleetd serve --data %s', or choose a new folder", dir, dir)
	case err != nil && !errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("checking %s: %w", dir, err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	return os.Chmod(dir, 0o700)
}

// initKey takes a key from the environment or makes one and writes it to
// path (0600). It returns the key and the file it wrote ("" for env).
func initKey(getenv func(string) string, env, path string) ([]byte, string, error) {
	if v := getenv(env); v != "" {
		k, err := parseKey(v)
		if err != nil {
			return nil, "", fmt.Errorf("%s: %w", env, err)
		}
		return k, "", nil
	}
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		return nil, "", err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, "", err
	}
	if err := os.WriteFile(path, []byte(hex.EncodeToString(k)+"\n"), 0o600); err != nil {
		return nil, "", fmt.Errorf("writing key: %w", err)
	}
	return k, path, nil
}

// parseKey reads a 32-byte key written as 64 hex digits or base64.
func parseKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if k, err := hex.DecodeString(s); err == nil && len(k) == 32 {
		return k, nil
	}
	if k, err := base64.StdEncoding.DecodeString(s); err == nil && len(k) == 32 {
		return k, nil
	}
	return nil, errors.New("a key must be 32 bytes written as 64 hex digits or base64 (make one with: openssl rand -hex 32)")
}

// loadKey reads a key from the environment, else from its file.
func loadKey(getenv func(string) string, env, path string) ([]byte, error) {
	if v := getenv(env); v != "" {
		k, err := parseKey(v)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", env, err)
		}
		return k, nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("no key at %s and %s is not set; was this folder made by 'keyfleetd init'?", path, env)
	}
	if err != nil {
		return nil, err
	}
	if st, err := os.Stat(path); err == nil && st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%s is readable by other users (mode %o); run: chmod 600 %s", path, st.Mode().Perm(), path)
	}
	k, err := parseKey(string(b))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

// defaultBootstrapTokenTTL is how long the first admin's token lasts.
const defaultBootstrapTokenTTL = 24 * time.Hour

func bootstrap(ctx context.Context, o InitOptions, storeKey, sealKey []byte, res *InitResult) error {
	st, err := openInitStore(ctx, o, storeKey)
	if err != nil {
		return err
	}
	defer st.Close()
	sl, err := seal.New(sealKey)
	if err != nil {
		return err
	}
	if err := initChecks(ctx, o.Dir, st, sl); err != nil {
		return err
	}
	svc, err := core.New(core.Config{Store: st, Sealer: sl})
	if err != nil {
		return err
	}
	if o.TokenTTL == 0 {
		o.TokenTTL = defaultBootstrapTokenTTL
	}
	founders, secret, err := svc.Bootstrap(ctx, append([]string{o.AdminUser}, o.Admins...), o.TokenTTL)
	if err != nil {
		return fmt.Errorf("creating the founding administrators: %w", err)
	}
	if err := os.WriteFile(adminTokenPath(o.Dir), []byte(secret+"\n"), 0o600); err != nil {
		return err
	}
	res.TokenExpires = svc.Now().Add(o.TokenTTL)
	if res.FounderPassFiles, err = writeFounderPasses(o.Dir, founders); err != nil {
		return err
	}
	bg, shares, err := svc.InitBreakGlass(ctx, o.BreakGlassShares, o.BreakGlassThreshold)
	if err != nil {
		return fmt.Errorf("making the break-glass credential: %w", err)
	}
	res.BreakGlassThreshold = bg.Threshold
	if res.BreakGlassFiles, err = sharefile.Write(filepath.Join(o.Dir, "breakglass"), bg.SetID, bg.Threshold, shares); err != nil {
		return err
	}
	if err := firstCheckpoint(o.Dir, res.CheckpointFile, st, sl); err != nil {
		res.CheckpointNote = err.Error()
	}
	return nil
}

// writeFounderPasses writes each founding admin's pass code to
// DIR/bootstrap/USER.pass (0600), for them alone.
func writeFounderPasses(dir string, founders []core.Founder) (map[string]string, error) {
	folder := filepath.Join(dir, "bootstrap")
	if err := os.MkdirAll(folder, 0o700); err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, f := range founders {
		path := filepath.Join(folder, f.User.Username+".pass")
		if err := os.WriteFile(path, []byte(f.PassCode+"\n"), 0o600); err != nil {
			return nil, err
		}
		out[f.User.Username] = path
	}
	return out, nil
}

// Fingerprint is the SHA-256 of DER bytes in colon hex, as browsers show it.
func Fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	parts := make([]string, len(sum))
	for i, b := range sum {
		parts[i] = fmt.Sprintf("%02X", b)
	}
	return strings.Join(parts, ":")
}
