package directorytest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// ADCapability is the root DSE supportedCapabilities value by which a
// server says it is Active Directory (LDAP_CAP_ACTIVE_DIRECTORY_OID).
const ADCapability = "1.2.840.113556.1.4.800"

// adCapabilities are the capabilities an AD domain controller lists; the
// first is the one that says "Active Directory".
var adCapabilities = []string{ADCapability, "1.2.840.113556.1.4.1670", "1.2.840.113556.1.4.1791"}

// firstUSN is the USN of the first entry loaded: AD's counters never
// start at 0.
const firstUSN = 12000

// StartAD starts a slapd that acts as an Active Directory domain
// controller as far as keyfleet can tell: its root DSE lists AD's
// capability (1.2.840.113556.1.4.800) and a highestCommittedUSN, and
// every entry carries a uSNChanged from one counter, AD's way of telling
// what changed. Entries of ldif get the counter's next values as they are
// loaded; Modify stamps what it adds or changes.
//
// slapd reads the root DSE from a file (the rootDSE directive) when it
// starts, so after each Modify the kit rewrites the file and restarts
// slapd on the same addresses and data.
//
// What slapd does not do: LDAP_MATCHING_RULE_IN_CHAIN
// (1.2.840.113556.1.4.1941) is unknown to it, and a filter using it
// matches nothing (the search succeeds, empty) — the case of a server
// that says it is AD and does not answer IN_CHAIN.
func StartAD(t testing.TB, ldif string) *Server {
	t.Helper()
	return start(t, ldif, true)
}

// USN is the directory's highestCommittedUSN (StartAD).
func (s *Server) USN() uint64 { return s.usn }

func (s *Server) nextUSN() uint64 {
	if s.usn < firstUSN {
		s.usn = firstUSN
	}
	s.usn++
	return s.usn
}

// writeRootDSE writes the root DSE file slapd reads at start.
func (s *Server) writeRootDSE(t testing.TB) {
	t.Helper()
	var b strings.Builder
	b.WriteString("dn:\n")
	for _, c := range adCapabilities {
		fmt.Fprintf(&b, "supportedCapabilities: %s\n", c)
	}
	fmt.Fprintf(&b, "highestCommittedUSN: %d\n", s.usn)
	if err := os.WriteFile(filepath.Join(s.Dir, "rootdse.ldif"), []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
}

// commitUSN publishes the counter in the root DSE: the file is rewritten
// and slapd restarted (it reads the file only at start).
func (s *Server) commitUSN(t testing.TB) {
	t.Helper()
	s.writeRootDSE(t)
	s.Stop(t)
	s.start(t)
}

// records splits LDIF into its records (separated by blank lines).
func records(ldif string) []string {
	var out []string
	for _, r := range strings.Split(strings.ReplaceAll(ldif, "\r\n", "\n"), "\n\n") {
		if r = strings.Trim(r, "\n"); r != "" {
			out = append(out, r)
		}
	}
	return out
}

// field is the value of the record's first "name: value" line.
func field(rec, name string) string {
	for _, line := range strings.Split(rec, "\n") {
		if v, ok := strings.CutPrefix(line, name+": "); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// stampLoad gives every entry of ldif (loaded by slapadd) the change
// counter's next value.
func (s *Server) stampLoad(t testing.TB, ldif string) string {
	t.Helper()
	var b strings.Builder
	for _, r := range records(ldif) {
		b.WriteString(stampEntry(r, s.nextUSN()))
	}
	return b.String()
}

// stampEntry adds the class that allows uSNChanged, and uSNChanged, to
// an entry. The class goes first, beside the dn: slapadd takes an
// attribute's values only when they are together.
func stampEntry(rec string, usn uint64) string {
	dn, rest, _ := strings.Cut(rec, "\n")
	return fmt.Sprintf("%s\nobjectClass: keyfleetADObject\n%s\nuSNChanged: %d\n\n", dn, rest, usn)
}

// stampChanges gives each entry the changes add, modify or rename the
// next uSNChanged, as AD does; a delete uses a USN too (AD keeps a
// tombstone). Each record must start "dn: …" (plain, not base64) and
// then "changetype: …".
func (s *Server) stampChanges(t testing.TB, ldif string) string {
	t.Helper()
	var b strings.Builder
	for _, r := range records(ldif) {
		lines := strings.SplitN(r, "\n", 3)
		if len(lines) < 2 || !strings.HasPrefix(lines[0], "dn: ") || !strings.HasPrefix(lines[1], "changetype: ") {
			t.Fatalf("AD mode: a change record must start with \"dn: \" and \"changetype: \" lines:\n%s", r)
		}
		dn := field(r, "dn")
		switch ct := field(r, "changetype"); ct {
		case "add":
			dn, rest, _ := strings.Cut(r, "\n") // rest starts with changetype: add
			ct, attrs, _ := strings.Cut(rest, "\n")
			fmt.Fprintf(&b, "%s\n%s\nobjectClass: keyfleetADObject\n%s\nuSNChanged: %d\n\n", dn, ct, attrs, s.nextUSN())
		case "modify":
			fmt.Fprintf(&b, "%s\n-\nreplace: uSNChanged\nuSNChanged: %d\n-\n\n", strings.TrimSuffix(r, "\n-"), s.nextUSN())
		case "modrdn", "moddn":
			b.WriteString(r + "\n\n")
			parent := field(r, "newsuperior")
			if parent == "" {
				_, parent, _ = strings.Cut(dn, ",")
			}
			fmt.Fprintf(&b, "dn: %s,%s\nchangetype: modify\nreplace: uSNChanged\nuSNChanged: %d\n-\n\n", field(r, "newrdn"), parent, s.nextUSN())
		case "delete":
			b.WriteString(r + "\n\n")
			s.nextUSN()
		default:
			t.Fatalf("AD mode: changetype %q is not known to the kit", ct)
		}
	}
	return b.String()
}

// ModifyWithoutUSN applies LDIF changes and leaves uSNChanged and the
// root DSE alone: a change that Active Directory would have counted and
// this one does not, to show that an incremental read goes by USN and
// not by modifyTimestamp (which slapd still sets).
func (s *Server) ModifyWithoutUSN(t testing.TB, ldif string) {
	t.Helper()
	s.ldapmodify(t, ldif)
}
