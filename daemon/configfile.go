package daemon

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// DefaultConfigFile is the configuration file init writes: every setting
// at its default. dataDir, when not empty, is written as the data setting.
func DefaultConfigFile(dataDir string) string {
	if dataDir == "" {
		return defaultConfigFile
	}
	return defaultConfigFile + "data: " + dataDir + "\n"
}

// writeInitConfig writes the default configuration file for Init, or keeps
// the one already at o.ConfigFile. It returns the file's path.
func writeInitConfig(o InitOptions) (string, error) {
	path := o.ConfigFile
	if path == "" {
		path = ConfigPath(o.Dir)
	}
	if _, err := os.Stat(path); err == nil && o.ConfigFile != "" {
		return path, nil
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("checking config %s: %w", path, err)
	}
	if err := os.WriteFile(path, []byte(DefaultConfigFile("")), 0o600); err != nil {
		return "", fmt.Errorf("writing config: %w", err)
	}
	return path, nil
}

const defaultConfigFile = `# keyfleetd configuration. Environment variables (KEYFLEET_*) and flags
# override these settings; docs/operations.md lists them all.
listen: 127.0.0.1:8443
log:
  format: json   # json or text
  level: info    # debug, info, warn, error
approval_ttl: 24h     # how long a two-person request waits for its approver
enrolment_ttl: 1h     # default lifetime of an enrolment challenge
max_body_bytes: 1048576
shutdown_timeout: 15s
store:
  block_cache_mb: 64
  index_cache_mb: 32
  key_rotation: 240h  # Badger makes a new data key this often
`
