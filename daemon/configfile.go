package daemon

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// DefaultConfigFile is the configuration file init writes: every setting
// at its default, each with a comment. The data setting names dataDir, or
// is left to --data and KEYFLEET_DATA when dataDir is empty.
func DefaultConfigFile(dataDir string) string {
	data := `data: ""              # the data folder init made; empty: --data or KEYFLEET_DATA`
	if dataDir != "" {
		data = "data: " + strconv.Quote(dataDir) + "  # the data folder init made (--data and KEYFLEET_DATA override it)"
	}
	head, rest, _ := strings.Cut(defaultConfigFile, "\nlisten:")
	return head + "\n" + data + "\nlisten:" + rest
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
	data := "" // beside the data folder: serve's --data names it
	if o.ConfigFile != "" {
		if abs, err := filepath.Abs(o.Dir); err == nil {
			data = abs
		}
	}
	if err := os.WriteFile(path, []byte(postgresConfig(DefaultConfigFile(data), o)), 0o600); err != nil {
		return "", fmt.Errorf("writing config: %w", err)
	}
	return path, nil
}

// defaultConfigFile has every setting at its default, with what it does.
// An empty value means the default its comment describes (one derived from
// another setting). TestTheDefaultConfigFileHasEverySetting keeps it
// complete: a new setting must be added here.
const defaultConfigFile = `# keyfleetd configuration: every setting at its default, with what it does.
# Environment variables (KEYFLEET_*) and flags override this file;
# 'keyfleetd check-config FILE' checks it; docs/operations.md describes every
# setting. An empty value ("" or []) means the default its comment names.
# SIGHUP (systemctl reload keyfleetd) applies attestation, events.sinks,
# tls_cert and tls_key without a restart; other changes need one.

listen: 127.0.0.1:8443  # HTTPS address (KEYFLEET_LISTEN, --listen)
tls_cert: ""            # PEM certificate served; empty: DATA/tls/cert.pem, the one init made
tls_key: ""             # its PEM private key; empty: DATA/tls/key.pem
log:
  format: json          # json or text (KEYFLEET_LOG_FORMAT, --log-format)
  level: info           # debug, info, warn or error (KEYFLEET_LOG_LEVEL, --log-level)
approval_ttl: 24h       # how long a two-person request waits for its approver (1m to 720h)
enrolment_ttl: 1h       # default lifetime of an enrolment challenge (1m to 168h)
max_body_bytes: 1048576 # largest API request body (1024 to 67108864)
shutdown_timeout: 15s   # how long in-flight requests may finish after SIGINT or SIGTERM
trusted_proxies: []     # reverse proxies whose X-Forwarded-For/Forwarded name the client, e.g. [10.0.4.0/24, 192.0.2.7]; none: the TCP peer is the client (KEYFLEET_TRUSTED_PROXIES)

# A person's own tokens (docs/security.md, "Tokens"). Service accounts'
# tokens are not bounded; one without an expiry is flagged.
tokens:
  person_ttl: 12h       # a person's token when they name no lifetime (keyfleet login)
  max_person_ttl: 168h  # the longest a person may ask for (at most 2160h)

# The two-person rule (docs/security.md, "A different person").
approvals:
  independence_window: 168h  # after one person made, granted, recovered, enrolled for or passed another's account, the two may not decide each other's requests for this long

# Fresh proofs of possession bound to one action (docs/security.md).
proofs:
  ttl: 2m               # how long a proof's challenge may be answered (10s to 10m)

# Signed audit checkpoints kept outside the store (docs/operations.md, "Faults").
audit:
  checkpoint:
    every: 1000         # a checkpoint at least every so many events
    interval: 1m        # and every so long while events come (1s to 24h)
    file: ""            # where the newest is kept, outside the data folder; empty: beside it, DATA.checkpoint
    witness_url: ""     # an HTTPS witness that keeps checkpoints too; empty: none
    on_mismatch: refuse # refuse to start, or warn and serve, when the store is behind its newest checkpoint

# Attestation roots trusted besides Yubico's built-in set: PEM files (a test
# CA, or a virtual key's from 'keyfleet-vkey ca export'). Never trusted unless
# listed here.
attestation:
  piv_roots: []         # e.g. [/etc/keyfleet/vkey-root.pem] (KEYFLEET_PIV_ROOTS, comma-separated)
  fido2_roots: []       # extra FIDO attestation roots

# The built-in fido2 factor kind: security keys and passkeys (WebAuthn).
fido2:
  disabled: false       # true turns the fido2 kind off
  rp_id: ""             # relying party ID; empty: web.origin's host name
  rp_name: keyfleet     # the name the key's client shows
  origins: []           # exact origins accepted from browsers; empty: [web.origin]
  require_attestation: false    # refuse keys whose attestation does not chain to a trusted root
  user_verification: preferred  # required, preferred or discouraged
  enterprise_attestation: false # ask for the key's serial (enterprise attestation)

# The dashboard and self-service pages.
web:
  disabled: false       # true serves the API only
  origin: ""            # the exact origin browsers use; empty: https://localhost:<listen port>
  insecure: false       # drops the Secure cookie flag: only for tests over http://localhost

# Verification for applications (POST /v1/verify/...).
verify:
  max_failures: 5       # wrong answers in a row that lock a factor, and across a user's factors the user (1 to 100)
  lockout: 15m          # how long a lock lasts unless an admin clears it (1s to 168h)
  ttl: 5m               # how long a begun verification may be finished (10s to 1h)

breakglass:
  max_session: 4h       # the longest a break-glass session may last (1m to 24h)

# Streaming the audit log to other systems (docs/events.md).
events:
  poll_interval: 1s     # how often sinks look for new events when not woken
  sse:                  # GET /v1/events
    keep_alive: 15s     # a comment line on an idle stream this often
    write_timeout: 30s  # a client that cannot take a write for this long is dropped
  sinks: []             # none. One of each type, every setting at its default:
  # - name: siem-file         # letters, digits, '.', '_', '-'; it keys the sink's cursor
  #   type: file              # file, syslog or webhook
  #   disabled: false         # keeps the cursor, delivers nothing
  #   start_at: oldest        # where a new sink begins: oldest (the whole log) or head
  #   batch_size: 100         # events per delivery
  #   filter:                 # empty lists match everything
  #     actions: []           # globs: ["factor.*", "user.disable"]
  #     severities: []        # info, notice, warning, high
  #     groups: []            # target users' groups
  #   retry:
  #     initial: 500ms
  #     max: 1m
  #     max_attempts: 0       # 0 never gives up (file, syslog); webhooks default to 10
  #   file:
  #     path: /var/log/keyfleet/events.jsonl
  #     max_size_mb: 100      # rotate before the file grows past this
  #     max_files: 5          # rotated files kept
  #     no_sync: false        # skip the fsync after each batch (faster, can lose events on power loss)
  # - name: siem-syslog
  #   type: syslog
  #   syslog:
  #     network: tcp          # udp, tcp, tls or unix
  #     address: syslog.example.org:514   # host:port, or the socket path for unix (default /dev/log)
  #     facility: authpriv
  #     app_name: keyfleetd
  #     hostname: ""          # empty: this machine's host name
  #     ca_file: ""           # tls: PEM roots of the receiver; empty: the system's
  #     server_name: ""       # tls: the name to check instead of the address's host
  #     timeout: 10s
  # - name: siem-webhook
  #   type: webhook
  #   webhook:
  #     url: https://siem.example.org/keyfleet
  #     secret_file: /etc/keyfleet/webhook.secret   # HMAC-SHA256 key, at least 16 bytes
  #     secret: ""            # the key itself; prefer secret_file
  #     ca_file: ""           # PEM roots of the receiver; empty: the system's
  #     timeout: 10s
  #     allow_http: false     # plain http:// (loopback tests only)

# Factor plugins, each binary pinned by its SHA-256 (docs/plugins.md).
plugins:
  dir: ""               # absolute folder of keyfleet-plugin-* binaries; empty loads none
  plugins: []           # none. For example:
  # - name: keyfleet-plugin-totp
  #   sha256: 0000000000000000000000000000000000000000000000000000000000000000   # sha256sum of the binary
  #   timeout: 5s         # each call; at most 5m

# The store: Badger in DATA/store (default), or PostgreSQL for several
# keyfleetd on one database (docs/operations.md, "Choosing a backend").
store:
  backend: badger       # badger or postgres (KEYFLEET_STORE_BACKEND)
  postgres:
    dsn: ""             # postgres://… (prefer dsn_file; KEYFLEET_STORE_DSN)
    dsn_file: ""        # a file (0600) holding the DSN
    max_conns: 0        # each keyfleetd's connections; 0: 16
  memory: 256MiB        # Badger's memtables and caches take shares of it, and the Go memory limit (GOMEMLIMIT) is it plus 64MiB (KEYFLEET_STORE_MEMORY)
  block_cache_mb: 0     # Badger's block cache, in MiB; 0: a quarter of memory
  index_cache_mb: 0     # Badger's index cache, in MiB; 0: an eighth of memory
  key_rotation: 240h    # Badger makes a new data key this often (at least 1h)
  reserve_mb: 0         # free space below which writes stop; 0: automatic (8 memtables and a fifth of the store)
  memtable_mb: 0        # Badger's memtable size, in MiB (1 to 1024; three at once); 0: a sixteenth of memory, 4 to 64
  space_check: 1s       # how often free space is measured besides at every sync: how soon writes resume
`
