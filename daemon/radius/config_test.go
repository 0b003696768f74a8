package radius

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

func TestConfigRefusesWhatWouldBeUnsafeOrAmbiguous(t *testing.T) {
	base := func() Config {
		return Config{Enabled: true, Clients: []ClientConfig{{Name: "gw", Networks: []string{"10.0.0.0/24"}, SecretFile: "/s"}}}
	}
	cases := []struct {
		name   string
		change func(*Config)
		want   string // "" for valid
	}{
		{"the smallest listener", func(*Config) {}, ""},
		{"a listener that is off needs nothing", func(c *Config) { *c = Config{} }, ""},
		{"no client", func(c *Config) { c.Clients = nil }, "clients: none listed"},
		{"two clients on one address", func(c *Config) {
			c.Clients = append(c.Clients, ClientConfig{Name: "gw2", Networks: []string{"10.0.0.7"}, SecretFile: "/t"})
		}, "overlaps 10.0.0.0/24"},
		{"a client without a secret", func(c *Config) { c.Clients[0].SecretFile = "" }, "secret_file: required"},
		{"a network that is not one", func(c *Config) { c.Clients[0].Networks = []string{"10.0.0.300"} }, "not an address"},
		{"a name with a space", func(c *Config) { c.Clients[0].Name = "my gw" }, "name"},
		{"an unknown first factor", func(c *Config) { c.FirstFactor = "kerberos" }, "must be none or ldap"},
		{"passwords in clear to a remote directory", func(c *Config) {
			c.FirstFactor, c.LDAP = FirstFactorLDAP, LDAPConfig{URL: "ldap://dir.example", BindDN: "uid={user},dc=example"}
		}, "in clear"},
		{"LDAP with StartTLS", func(c *Config) {
			c.FirstFactor, c.LDAP = FirstFactorLDAP, LDAPConfig{URL: "ldap://dir.example", StartTLS: true, BindDN: "uid={user},dc=example"}
		}, ""},
		{"a bind DN without the user", func(c *Config) {
			c.FirstFactor, c.LDAP = FirstFactorLDAP, LDAPConfig{URL: "ldaps://dir.example", BindDN: "cn=admin,dc=example"}
		}, "must hold {user} once"},
		{"a code of three digits", func(c *Config) { c.CodeLength = 3 }, "code_length"},
		{"no rate at all", func(c *Config) { c.RateLimit.PerUser = -1 }, "rate_limit"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := base()
			tc.change(&c)
			c.Defaults()
			err := c.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("got %v, want an error saying %q", err, tc.want)
			}
		})
	}
}

func TestConfigReadsFromYAML(t *testing.T) {
	var c Config
	doc := "enabled: true\nlisten: 0.0.0.0:1812\nchallenge_ttl: 90s\nclients:\n  - name: gw\n    networks: [10.0.0.1]\n    secret_file: /etc/keyfleet/gw.secret\n"
	if err := yaml.Unmarshal([]byte(doc), &c); err != nil {
		t.Fatal(err)
	}
	if c.ChallengeTTL.Seconds() != 90 || c.Clients[0].Name != "gw" {
		t.Fatalf("%+v", c)
	}
}

func TestSecretsMustBeLongAndPrivate(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(body), mode)
		os.Chmod(p, mode)
		return p
	}
	if _, err := readSecret(write("short", "testing123\n", 0o600)); err == nil || !strings.Contains(err.Error(), "at least 16") {
		t.Fatalf("radtest's example secret accepted: %v", err)
	}
	if _, err := readSecret(write("public", "0123456789abcdef0123\n", 0o644)); err == nil || !strings.Contains(err.Error(), "readable by everyone") {
		t.Fatalf("a world-readable secret accepted: %v", err)
	}
	if s, err := readSecret(write("good", "0123456789abcdef0123\n", 0o640)); err != nil || string(s) != "0123456789abcdef0123" {
		t.Fatalf("%q %v", s, err)
	}
}

func TestPasswordAndCodeAreSplitAsConfigured(t *testing.T) {
	cases := []struct {
		sep, in, password, code string
	}{
		{"", "s3cret!123456", "s3cret!", "123456"},
		{"", "s3cret!", "s3cret!", ""},       // no code: asked for by a challenge
		{"", "123456", "123456", ""},         // six digits alone are a password with no code
		{"", "pass12345a", "pass12345a", ""}, // the tail is not all digits
		{",", "pass,word,123456", "pass,word", "123456"},
		{",", "password", "password", ""},
	}
	for _, tc := range cases {
		s := &Server{cfg: Config{CodeLength: 6, Separator: tc.sep}}
		if p, c := s.split(tc.in); p != tc.password || c != tc.code {
			t.Errorf("split(%q, sep %q) = %q, %q; want %q, %q", tc.in, tc.sep, p, c, tc.password, tc.code)
		}
	}
}

func TestLongMessagesAreSplitBetweenRunes(t *testing.T) {
	msg := strings.Repeat("é", 200) // 400 bytes
	attrs := textAttrs(18, msg)
	var joined string
	for _, a := range attrs {
		if len(a.Attribute) > maxText || !utf8.Valid(a.Attribute) {
			t.Fatalf("an attribute of %d bytes, valid UTF-8 %v", len(a.Attribute), utf8.Valid(a.Attribute))
		}
		joined += string(a.Attribute)
	}
	if joined != msg || len(attrs) != 2 {
		t.Fatalf("%d attributes", len(attrs))
	}
}

func TestMessageAuthenticatorChecks(t *testing.T) {
	secret := []byte("0123456789abcdef")
	// A packet with two Message-Authenticators is refused even if one is right.
	pkt := []byte{1, 7, 0, 58}
	pkt = append(pkt, make([]byte, 16)...)
	pkt = append(pkt, 80, 18)
	pkt = append(pkt, make([]byte, 16)...)
	pkt = append(pkt, 80, 18)
	pkt = append(pkt, make([]byte, 16)...)
	if err := checkMessageAuthenticator(pkt, secret); err != errBadAuthenticator {
		t.Fatalf("two Message-Authenticators: %v", err)
	}
	short := []byte{1, 7, 0, 24, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 80, 4, 1, 2}
	if err := checkMessageAuthenticator(short, secret); err != errBadAuthenticator {
		t.Fatalf("a short Message-Authenticator: %v", err)
	}
	broken := []byte{1, 7, 0, 22, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 9}
	if err := checkMessageAuthenticator(broken, secret); err != errMalformed {
		t.Fatalf("an attribute running past the end: %v", err)
	}
}
