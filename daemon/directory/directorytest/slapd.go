// Package directorytest is the test kit of daemon/directory: a real
// OpenLDAP slapd (Debian's slapd package) started on loopback with a
// private configuration, a private CA for LDAPS and StartTLS, and LDIF
// that fills it with people and nested groups. StartAD makes it act as an
// Active Directory domain controller (root DSE, uSNChanged). A missing
// slapd fails the test naming the package to install. For what slapd
// cannot act, AD's ranged retrieval of large member lists and
// LDAP_MATCHING_RULE_IN_CHAIN, StartFakeAD starts a small LDAP server of
// the kit's own on the loopback.
package directorytest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Suffix, RootDN and RootPassword are the test directory's.
const (
	Suffix       = "dc=example,dc=org"
	RootDN       = "cn=admin," + Suffix
	RootPassword = "root-secret"
	People       = "ou=people," + Suffix
	Groups       = "ou=groups," + Suffix
	// ReaderDN is a read-only account keyfleet binds as; its password is
	// in Server.PasswordFile.
	ReaderDN       = "cn=keyfleet-reader," + Suffix
	ReaderPassword = "reader-secret"
)

// Server is a running slapd.
type Server struct {
	Dir string
	// URL is ldap:// (StartTLS offered), LDAPSURL ldaps://; both on
	// 127.0.0.1 with a certificate from CA.
	URL, LDAPSURL string
	// CAFile is the PEM of the private CA; PasswordFile holds the
	// reader's password (mode 0600).
	CAFile, PasswordFile string
	conf                 string
	listen               string
	// ad: the server acts as Active Directory (StartAD); usn is its
	// highestCommittedUSN.
	ad   bool
	usn  uint64
	cmd  *exec.Cmd
	done chan struct{}
}

// need fails the test when a program is missing, naming its package.
func need(t testing.TB, prog, pkg string) string {
	t.Helper()
	path, err := exec.LookPath(prog)
	if err != nil {
		for _, dir := range []string{"/usr/sbin", "/usr/bin"} {
			if _, err := os.Stat(filepath.Join(dir, prog)); err == nil {
				return filepath.Join(dir, prog)
			}
		}
		t.Fatalf("%s is not installed: apt-get install %s (scripts/deps.sh installs it)", prog, pkg)
	}
	return path
}

// Start starts a slapd in a temporary folder with ldif loaded (slapadd,
// before it serves), and stops it when the test ends.
func Start(t testing.TB, ldif string) *Server {
	t.Helper()
	return start(t, ldif, false)
}

func start(t testing.TB, ldif string, ad bool) *Server {
	t.Helper()
	need(t, "ldapmodify", "ldap-utils")
	dir := t.TempDir()
	s := &Server{Dir: dir, conf: filepath.Join(dir, "slapd.conf"), ad: ad}
	ca, err := writeCerts(dir)
	if err != nil {
		t.Fatal(err)
	}
	s.CAFile = ca
	s.PasswordFile = filepath.Join(dir, "reader.password")
	if err := os.WriteFile(s.PasswordFile, []byte(ReaderPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "db"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.conf, []byte(slapdConf(dir, ad)), 0o600); err != nil {
		t.Fatal(err)
	}
	ldif = BaseLDIF() + ldif
	if ad {
		ldif = s.stampLoad(t, ldif)
		s.writeRootDSE(t)
	}
	s.load(t, ldif)
	ports := freePorts(t, 2)
	s.URL, s.LDAPSURL = "ldap://127.0.0.1:"+ports[0], "ldaps://127.0.0.1:"+ports[1]
	s.listen = s.URL + "/ " + s.LDAPSURL + "/"
	s.start(t)
	t.Cleanup(func() { s.Stop(t) })
	return s
}

// load adds LDIF offline with slapadd (fast for big directories).
func (s *Server) load(t testing.TB, ldif string) {
	t.Helper()
	slapadd := need(t, "slapadd", "slapd")
	cmd := exec.Command(slapadd, "-f", s.conf, "-q")
	cmd.Stdin = strings.NewReader(ldif)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("slapadd: %v\n%s", err, out)
	}
}

// start runs slapd in the foreground (-d 0) and waits until it answers.
func (s *Server) start(t testing.TB) {
	t.Helper()
	slapd := need(t, "slapd", "slapd")
	var log bytes.Buffer
	s.cmd = exec.Command(slapd, "-f", s.conf, "-h", s.listen, "-d", "0")
	s.cmd.Stdout, s.cmd.Stderr = &log, &log
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("starting slapd: %v", err)
	}
	s.done = make(chan struct{})
	go func() { s.cmd.Wait(); close(s.done) }()
	addr := strings.TrimPrefix(s.URL, "ldap://")
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-s.done:
			t.Fatalf("slapd exited at start: %s", log.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("slapd did not listen on %s in 20s: %s", addr, log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop stops slapd (SIGTERM, then SIGKILL) and waits for it to exit.
func (s *Server) Stop(t testing.TB) {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
	}
	s.cmd = nil
}

// Kill stops slapd at once, as a crash or a network cut would.
func (s *Server) Kill() {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Kill()
	<-s.done
	s.cmd = nil
}

// Restart starts a stopped slapd again on the same addresses and data.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.start(t)
}

// Modify applies LDIF changes (changetype records) as the root DN. On a
// server started with StartAD every entry added or changed gets the next
// uSNChanged and the root DSE's highestCommittedUSN follows (see
// stampChanges).
func (s *Server) Modify(t testing.TB, ldif string) {
	t.Helper()
	if !s.ad {
		s.ldapmodify(t, ldif)
		return
	}
	s.ldapmodify(t, s.stampChanges(t, ldif))
	s.commitUSN(t)
}

// ldapmodify runs ldapmodify as the root DN.
func (s *Server) ldapmodify(t testing.TB, ldif string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, need(t, "ldapmodify", "ldap-utils"), "-x", "-H", s.URL, "-D", RootDN, "-w", RootPassword)
	cmd.Stdin = strings.NewReader(ldif)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ldapmodify: %v\n%s", err, out)
	}
}

func freePorts(t testing.TB, n int) []string {
	t.Helper()
	var out []string
	var ls []net.Listener
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		_, port, _ := net.SplitHostPort(l.Addr().String())
		out = append(out, port)
	}
	for _, l := range ls {
		l.Close()
	}
	return out
}

// adSchema defines the Active Directory attributes keyfleet reads, so
// that slapd can hold AD-like entries (objectGUID as 16 bytes,
// userAccountControl's disabled bit, sAMAccountName).
const adSchema = `attributetype ( 1.3.6.1.4.1.55555.1.1 NAME 'sAMAccountName' EQUALITY caseIgnoreMatch SUBSTR caseIgnoreSubstringsMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
attributetype ( 1.3.6.1.4.1.55555.1.2 NAME 'userAccountControl' EQUALITY integerMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE )
attributetype ( 1.3.6.1.4.1.55555.1.3 NAME 'objectGUID' EQUALITY octetStringMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.40 SINGLE-VALUE )
objectclass ( 1.3.6.1.4.1.55555.2.1 NAME 'keyfleetADUser' SUP top AUXILIARY MAY ( sAMAccountName $ userAccountControl $ objectGUID ) )
` + adChangeSchema

// adChangeSchema is what StartAD adds: AD's change counter on every entry
// (uSNChanged, with an ordering rule so that uSNChanged>=N works) and the
// root DSE attributes that say "Active Directory". slapd refuses
// operational attribute types from a schema file, so these are user
// attributes; keyfleet asks for them by name, as it does of AD.
const adChangeSchema = `attributetype ( 1.3.6.1.4.1.55555.1.4 NAME 'uSNChanged' EQUALITY integerMatch ORDERING integerOrderingMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE )
attributetype ( 1.3.6.1.4.1.55555.1.5 NAME 'highestCommittedUSN' EQUALITY integerMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE )
attributetype ( 1.3.6.1.4.1.55555.1.6 NAME 'supportedCapabilities' EQUALITY objectIdentifierMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.38 )
objectclass ( 1.3.6.1.4.1.55555.2.2 NAME 'keyfleetADObject' SUP top AUXILIARY MAY uSNChanged )
`

func slapdConf(dir string, ad bool) string {
	os.WriteFile(filepath.Join(dir, "ad.schema"), []byte(adSchema), 0o600)
	rootDSE := ""
	if ad {
		rootDSE = "rootDSE " + filepath.Join(dir, "rootdse.ldif")
	}
	return fmt.Sprintf(`include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
include %[1]s/ad.schema
pidfile %[1]s/slapd.pid
argsfile %[1]s/slapd.args
modulepath /usr/lib/ldap
moduleload back_mdb
%[6]s
TLSCACertificateFile %[1]s/ca.pem
TLSCertificateFile %[1]s/server.pem
TLSCertificateKeyFile %[1]s/server.key
database mdb
suffix "%[2]s"
rootdn "%[3]s"
rootpw %[4]s
directory %[1]s/db
maxsize 1073741824
# Without paging a search stops at 1000 entries: reading more takes RFC
# 2696 paged results.
limits dn.exact="%[5]s" size.soft=1000 size.hard=1000 size.prtotal=unlimited
index objectClass eq
index entryUUID eq
index modifyTimestamp eq
index uSNChanged eq
access to attrs=userPassword by self write by anonymous auth by * none
access to * by dn.exact="%[5]s" read by * none
`, dir, Suffix, RootDN, RootPassword, ReaderDN, rootDSE)
}

// BaseLDIF is the suffix, the people and groups folders and the reader
// account.
func BaseLDIF() string {
	return fmt.Sprintf(`dn: %s
objectClass: dcObject
objectClass: organization
dc: example
o: Example

dn: %s
objectClass: organizationalUnit
ou: people

dn: %s
objectClass: organizationalUnit
ou: groups

dn: %s
objectClass: organizationalRole
objectClass: simpleSecurityObject
cn: keyfleet-reader
userPassword: %s

`, Suffix, People, Groups, ReaderDN, ReaderPassword)
}
