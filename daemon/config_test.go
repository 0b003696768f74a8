package daemon

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestConfigSourcesLayerFileThenEnvironment(t *testing.T) {
	file := filepath.Join(t.TempDir(), "k.yaml")
	os.WriteFile(file, []byte("listen: 127.0.0.1:9000\napproval_ttl: 2h\nlog:\n  format: text\n"), 0o600)
	var c Config
	if err := c.LoadFile(file); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"KEYFLEET_LISTEN": "127.0.0.1:9100", "KEYFLEET_ENROLMENT_TTL": "20m"}
	if err := c.LoadEnv(func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	c.DataDir = "/tmp/x"
	c.Defaults()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.1:9100" || c.ApprovalTTL.Duration != 2*time.Hour || c.EnrolmentTTL.Duration != 20*time.Minute || c.Log.Format != "text" {
		t.Fatalf("layered config = %+v", c)
	}
	if c.TLSCert != "/tmp/x/tls/cert.pem" || c.Store.BlockCacheMB != 64 || c.Verify.MaxFailures != 5 || c.Verify.Lockout.Duration != 15*time.Minute {
		t.Fatalf("defaults not filled: %+v", c)
	}
	if cp := c.Audit.Checkpoint; cp.File != "/tmp/x.checkpoint" || cp.Every != 1000 || cp.OnMismatch != "refuse" || c.Store.MemTableMB != 32 {
		t.Fatalf("fault defaults not filled: %+v %+v", cp, c.Store.StoreSpace)
	}
}

func TestBadConfigIsRefusedWithWhatToChange(t *testing.T) {
	tests := []struct {
		name, yaml, want string
	}{
		{"a misspelt key names its line", "listen: 127.0.0.1:1\napprovl_ttl: 1h\n", `k.yaml:2: approvl_ttl: unknown setting; did you mean "approval_ttl"?`},
		{"a bad duration names its line", "approval_ttl: soon\n", `k.yaml:1: approval_ttl: "soon" is not a duration`},
		{"a bad address says the form", "listen: nowhere\n", "host:port"},
		{"an unknown log format lists the choices", "log:\n  format: xml\n", "json or text"},
		{"a too short approval window gives the range", "approval_ttl: 10s\n", "between 1m and 720h"},
		{"a negative failure limit gives the range", "verify:\n  max_failures: -1\n", "verify.max_failures: -1 must be between 1 and 100"},
		{"a lockout of a month gives the range", "verify:\n  lockout: 720h\n", "verify.lockout"},
		{"ldap settings without a url say so", "directory:\n  ldap:\n    user_base: ou=people,dc=example,dc=org\n", "ldap.url: empty"},
		{"plain ldap without StartTLS is refused", "directory:\n  ldap:\n    url: ldap://ldap.example.org\n    user_base: dc=example,dc=org\n", "in the clear"},
		{"a directory group mapped to an unknown role names the roles", "directory:\n  ldap:\n    url: ldaps://ldap.example.org\n    user_base: dc=example,dc=org\n    roles:\n      cn=x,dc=example,dc=org: root\n", "not a role people hold"},
		{"a checkpoint file inside the data folder is refused", "audit:\n  checkpoint:\n    file: /tmp/x/store/cp.json\n", "inside the data folder"},
		{"an unknown mismatch choice lists the choices", "audit:\n  checkpoint:\n    on_mismatch: ignore\n", "refuse or warn"},
		{"a witness that is not a URL", "audit:\n  checkpoint:\n    witness_url: witness.example.org\n", "https:// URL"},
		{"a negative reserve", "store:\n  reserve_mb: -1\n", "cannot be negative"},
		{"a memtable of 2 GiB gives the range", "store:\n  memtable_mb: 2048\n", "between 1 and 1024"},
		{"a memory size without a unit it knows", "store:\n  memory: 2TB\n", `"2TB" is not a size like 256MiB`},
		{"memory too small for the caches set", "store:\n  memory: 128MiB\n  block_cache_mb: 128\n", "store.memory: 128MiB is less than the"},
		{"memory below 64 MiB", "store:\n  memory: 32MiB\n", "between 64MiB and 1024GiB"},
		{"a proxy that is no address names its line", "listen: 127.0.0.1:1\ntrusted_proxies:\n  - 10.0.0.0/8\n  - proxy.internal\n", "line 4: trusted_proxies: \"proxy.internal\" is not an address"},
		{"a range with host bits says which was meant", "trusted_proxies: [10.1.2.3/8]\n", "write 10.0.0.0/8 for the range, or 10.1.2.3/32 for the one address"},
		{"trusting everyone is refused", "trusted_proxies: [\"::/0\"]\n", "trusts every address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "k.yaml")
			os.WriteFile(file, []byte(tt.yaml), 0o600)
			c := Config{DataDir: "/tmp/x"}
			err := c.LoadFile(file)
			if err == nil {
				c.Defaults()
				err = c.Validate()
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.want)
			}
		})
	}
}

func TestTrustedProxiesAreReadFromTheFileOrTheEnvironment(t *testing.T) {
	file := filepath.Join(t.TempDir(), "k.yaml")
	os.WriteFile(file, []byte("trusted_proxies:\n  - 10.0.0.0/8\n  - 192.0.2.7\n  - 2001:db8::/32\n"), 0o600)
	var c Config
	if err := c.LoadFile(file); err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprint(c.trustedProxies())
	if got != "[10.0.0.0/8 192.0.2.7/32 2001:db8::/32]" {
		t.Fatalf("trusted proxies from the file = %s", got)
	}
	env := map[string]string{"KEYFLEET_TRUSTED_PROXIES": "172.16.0.0/12, ::1"}
	if err := c.LoadEnv(func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(c.trustedProxies()); got != "[172.16.0.0/12 ::1/128]" {
		t.Fatalf("the environment did not replace the list: %s", got)
	}
	env["KEYFLEET_TRUSTED_PROXIES"] = "0.0.0.0/0"
	if err := c.LoadEnv(func(k string) string { return env[k] }); err == nil || !strings.Contains(err.Error(), "trusts every address") {
		t.Fatalf("KEYFLEET_TRUSTED_PROXIES=0.0.0.0/0: %v", err)
	}
}

func TestKeysAreParsedFromHexOrBase64Only(t *testing.T) {
	for _, good := range []string{strings.Repeat("ab", 32), "q83vq83vq83vq83vq83vq83vq83vq83vq83vq83vq80="} {
		if _, err := parseKey(good); err != nil {
			t.Errorf("parseKey(%q): %v", good, err)
		}
	}
	for _, bad := range []string{"", "abcd", strings.Repeat("zz", 32)} {
		if _, err := parseKey(bad); err == nil || strings.Contains(err.Error(), bad) && bad != "" {
			t.Errorf("parseKey(%q) = %v: want an error that does not echo the key", bad, err)
		}
	}
}

func TestTheConfigFileInitWritesLoads(t *testing.T) {
	file := filepath.Join(t.TempDir(), "k.yaml")
	os.WriteFile(file, []byte(defaultConfigFile), 0o600)
	c := Config{DataDir: "/tmp/x"}
	if err := c.LoadFile(file); err != nil {
		t.Fatal(err)
	}
	c.Defaults()
	if err := c.Validate(); err != nil || len(c.TrustedProxies) != 0 {
		t.Fatalf("the default file: %v, trusted proxies %v", err, c.TrustedProxies)
	}
}

// One setting sizes Badger's memtable and caches and the Go memory
// limit; settings given for them win over their share.
func TestStoreMemorySizesTheMemtableAndCaches(t *testing.T) {
	tests := []struct {
		name                 string
		yaml                 string
		memtable, block, idx int64
		limit, high          int64 // GOMEMLIMIT, the unit's MemoryHigh
	}{
		{"the default", "", 32, 64, 32, 320 << 20, 512 << 20},
		{"a gigabyte", "store:\n  memory: 1GiB\n", 64, 256, 128, 1088 << 20, 2048 << 20},
		{"a small budget", "store:\n  memory: 64MiB\n", 8, 16, 8, 128 << 20, 320 << 20},
		{"a memtable set wins over its share", "store:\n  memory: 512MiB\n  memtable_mb: 8\n", 8, 128, 64, 576 << 20, 1024 << 20},
		{"a config from before the setting keeps its sizes", "store:\n  block_cache_mb: 64\n  index_cache_mb: 32\n  memtable_mb: 16\n", 16, 64, 32, 320 << 20, 512 << 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "k.yaml")
			os.WriteFile(file, []byte(tt.yaml), 0o600)
			c := Config{DataDir: "/tmp/x"}
			if err := c.LoadFile(file); err != nil {
				t.Fatal(err)
			}
			c.Defaults()
			if err := c.Validate(); err != nil {
				t.Fatal(err)
			}
			if st := c.Store; st.MemTableMB != tt.memtable || st.BlockCacheMB != tt.block || st.IndexCacheMB != tt.idx || c.MemoryLimit() != tt.limit {
				t.Fatalf("memtable %d, block cache %d, index cache %d MiB, limit %d; want %d, %d, %d, %d",
					st.MemTableMB, st.BlockCacheMB, st.IndexCacheMB, c.MemoryLimit(), tt.memtable, tt.block, tt.idx, tt.limit)
			}
			if c.ServiceMemoryHigh() != tt.high {
				t.Fatalf("MemoryHigh for the service %d MiB, want %d", c.ServiceMemoryHigh()>>20, tt.high>>20)
			}
		})
	}
	var c Config
	if err := c.LoadEnv(func(k string) string { return map[string]string{"KEYFLEET_STORE_MEMORY": "768MiB"}[k] }); err != nil || c.Store.Memory != 768<<20 {
		t.Fatalf("KEYFLEET_STORE_MEMORY: %v, %s", err, c.Store.Memory)
	}
}
