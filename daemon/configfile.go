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

// checkpointFileLine is the default file's audit.checkpoint.file line.
const checkpointFileLine = `    file: ""            # where the newest is kept, outside the data folder; empty: beside it, DATA.checkpoint`

// WithCheckpointFile sets audit.checkpoint.file in a configuration file
// made by DefaultConfigFile(dataDir): packagers name a folder the service
// may write that is not the data folder. It refuses a relative path (serve
// may start anywhere) and one inside dataDir (serve refuses that).
func WithCheckpointFile(text, dataDir, file string) (string, error) {
	if !filepath.IsAbs(file) {
		return "", fmt.Errorf("audit.checkpoint.file %s: give an absolute path (serve may start in another folder)", file)
	}
	if inside(dataDir, file) {
		return "", fmt.Errorf("audit.checkpoint.file %s is inside the data folder %s; keyfleetd refuses that: put it outside, where a copy of the data folder put back does not reach it", file, dataDir)
	}
	line := "    file: " + strconv.Quote(file) + "  # where the newest is kept, outside the data folder (empty: beside it, DATA.checkpoint)"
	return strings.Replace(text, checkpointFileLine, line, 1), nil
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
` + checkpointFileLine + `
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

# The RADIUS listener for VPN gateways, Wi-Fi and a FreeRADIUS in front
# (docs/radius.md). Off unless enabled.
radius:
  enabled: false        # true serves RADIUS on listen
  listen: 127.0.0.1:1812  # UDP address
  first_factor: none    # none: User-Password is the code alone; ldap: the directory password, then the code
  code_length: 6        # trailing digits of password+code that are the code (4 to 10)
  separator: ""         # split password+code at the last occurrence of this instead; empty: by code_length
  kinds: []             # factor kinds a code may answer for; empty: every kind answered with a code
  challenge_ttl: 2m     # how long an Access-Challenge may be answered (10s to 10m)
  max_in_flight: 512    # requests worked on at once; more are dropped and the NAS retries
  rate_limit:
    per_client: 1000    # requests a second from one NAS; beyond it they are dropped
    client_burst: 2000  # and the burst allowed above it
    per_user: 0.2       # sign-ins a second for one user name; beyond it a reject says to wait
    user_burst: 6       # and the burst allowed above it
  ldap:                 # first_factor ldap: bind as the user to check the password
    url: ""             # ldaps://dir.example.org, or ldap:// with start_tls
    bind_dn: ""         # with {user}: uid={user},ou=people,dc=example,dc=org, or {user}@example.org
    start_tls: false    # upgrade an ldap:// connection before binding
    ca_file: ""         # PEM roots of the directory; empty: the system's
    timeout: 5s         # connecting and binding (100ms to 1m)
  clients: []           # none: every NAS must be listed. For example:
  # - name: vpn-gw1           # in logs, metrics and audit records
  #   networks: [10.0.0.5]    # addresses or CIDR prefixes it sends from; no two clients overlap
  #   secret_file: /etc/keyfleet/radius-vpn.secret   # the shared secret: one line, at least 16 characters, not world-readable

# First-login passes (docs/radius.md, docs/pam.md): a user who must enrol and
# has no factor is answered at the RADIUS listener (first_factor ldap) or by
# the PAM module (first_login) with an access pass for /welcome.
first_login:
  enabled: false        # true issues them; only where a first factor was checked first
  pass_ttl: 1h          # how long a pass lasts (10m to 8h)

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
  #   procs: 1            # GOMAXPROCS of the plugin process; default 1

# Push approvals (the push factor, keyfleet-plugin-push; docs/push.md).
push:
  max_per_user: 5       # pushes one user may get in a period, across every keyfleetd on a PostgreSQL database; more are refused (429)
  period: 10m           # the window of max_per_user
  keep_alive: 20s       # a comment line on idle companion streams this often
  clock_skew: 2m        # how far a companion's clock may be off in its signed requests
  streams_per_device: 4 # open streams per companion; a new one beyond ends the oldest
  max_pending: 100000   # pushes waiting at once (on PostgreSQL: in the database, for every keyfleetd)
  gateways: []          # relays that also get a notice of each push. For example:
  # - name: phones
  #   type: ntfy          # ntfy or webhook
  #   url: https://ntfy.example.org   # ntfy: the server; webhook: the URL notices are POSTed to
  #   topic_prefix: keyfleet-         # ntfy: a topic is this and the push factor's id
  #   token_file: /etc/keyfleet/ntfy.token   # ntfy: an access token (or token: …)
  #   token: ""
  #   click: https://keyfleet.example.org/push/   # ntfy: what the notification opens
  #   secret_file: /etc/keyfleet/push-hook.secret   # webhook: HMAC-SHA256 key, at least 16 bytes
  #   secret: ""          # webhook: the key itself; prefer secret_file
  #   timeout: 5s
  #   allow_http: false   # plain http:// (loopback tests only)

# Users from LDAP / Active Directory, and SCIM 2.0 for identity providers
# (docs/directory.md). Settings left empty take the flavour's default.
directory:
  ldap:
    url: ""                  # ldaps://host:636, or ldap://host:389 with start_tls; empty: no LDAP sync
    name: ldap               # the source's name in users' links and the audit trail
    flavor: openldap         # openldap or ad: the defaults of the empty settings below
    start_tls: false         # StartTLS on an ldap:// URL
    ca_file: ""              # PEM roots the directory's certificate must chain to; empty: the system's
    server_name: ""          # the name its certificate must carry; empty: the URL's host
    allow_plaintext: false   # ldap:// without StartTLS sends the bind password in the clear: loopback only
    bind_dn: ""              # the read-only account keyfleet binds as; empty binds anonymously
    bind_password_file: ""   # a file (0600) whose first line is that account's password
    user_base: ""            # the DN the users are under
    user_filter: ""          # empty: (objectClass=inetOrgPerson); ad: (&(objectCategory=person)(objectClass=user))
    group_base: ""           # empty: user_base
    group_filter: ""         # empty: groupOfNames or groupOfUniqueNames; ad: (objectClass=group)
    attributes:
      id: ""                 # the stable id; empty: entryUUID (ad: objectGUID)
      username: ""           # empty: uid (ad: sAMAccountName), lower-cased
      display_name: ""       # empty: cn (ad: displayName)
      email: ""              # empty: mail
      disabled: ""           # empty: none (ad: userAccountControl's disabled bit)
      member: ""             # a group's member attribute; empty: member
    groups: {}               # directory group DN: keyfleet group
    roles: {}                # directory group DN: keyfleet role (granted when a second person approves)
    nested: auto             # groups in groups: auto, in_chain (AD), resolve or off
    page_size: 500           # RFC 2696 paged search, entries a page
    interval: 15m            # how often keyfleetd syncs what changed
    full_interval: 6h        # how often it reads everything (finding the users who left)
    timeout: 30s             # each LDAP request
    max_disable_percent: 10  # a sync that would disable more than this share of the users stops…
    min_disable: 10          # …when that is also more than this many (keyfleet directory sync --force)
  scim:
    enabled: false           # serve SCIM 2.0 under /scim/v2 (a service account's token with only the scim role)
    groups: {}               # a SCIM group's displayName: {group: G, role: R}
    auto_groups: false       # an unmapped group gives its members the keyfleet group named like it
    max_results: 200         # a list page's limit

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
  memtable_mb: 0        # Badger's memtable size, in MiB (1 to 1024; three at once); 0: an eighth of memory, 4 to 64
  space_check: 1s       # how often free space is measured besides at every sync: how soon writes resume
`
