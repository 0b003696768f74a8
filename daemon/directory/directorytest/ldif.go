package directorytest

import (
	"encoding/base64"
	"fmt"
	"strings"
)

// PersonDN and GroupDN name the test directory's entries.
func PersonDN(uid string) string { return "uid=" + uid + "," + People }
func GroupDN(cn string) string   { return "cn=" + cn + "," + Groups }

// Person is one test user. With AD set the entry carries Active
// Directory's attributes too: sAMAccountName (the uid in capitals, as AD
// writes them), a 16-byte objectGUID, userAccountControl.
type Person struct {
	UID, Name, Mail string
	AD              bool
	GUID            [16]byte
	// Disabled sets userAccountControl's ACCOUNTDISABLE bit (AD) or
	// pwdAccountLockedTime-like "employeeType: disabled" (not AD).
	Disabled bool
}

// LDIF is the person's entry.
func (p Person) LDIF() string {
	var b strings.Builder
	fmt.Fprintf(&b, "dn: %s\nobjectClass: inetOrgPerson\n", PersonDN(p.UID))
	if p.AD {
		b.WriteString("objectClass: keyfleetADUser\n")
	}
	name := p.Name
	if name == "" {
		name = strings.ToUpper(p.UID[:1]) + p.UID[1:]
	}
	fmt.Fprintf(&b, "uid: %s\ncn: %s\nsn: %s\ndisplayName: %s\n", p.UID, name, name, name)
	if p.Mail != "" {
		fmt.Fprintf(&b, "mail: %s\n", p.Mail)
	}
	if p.AD {
		uac := 512
		if p.Disabled {
			uac |= 2
		}
		fmt.Fprintf(&b, "sAMAccountName: %s\nuserAccountControl: %d\nobjectGUID:: %s\n", strings.ToUpper(p.UID), uac,
			base64.StdEncoding.EncodeToString(p.GUID[:]))
	} else if p.Disabled {
		b.WriteString("employeeType: disabled\n")
	}
	b.WriteString(loaded)
	return b.String()
}

// loaded ends an entry loaded at the start: changed long ago, so that an
// incremental read by modifyTimestamp sees only what a test changes.
const loaded = "createTimestamp: 20200101000000Z\nmodifyTimestamp: 20200101000000Z\n\n"

// GroupLDIF is a groupOfNames with the given member DNs.
func GroupLDIF(cn string, members ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "dn: %s\nobjectClass: groupOfNames\ncn: %s\n", GroupDN(cn), cn)
	for _, m := range members {
		fmt.Fprintf(&b, "member: %s\n", m)
	}
	b.WriteString(loaded)
	return b.String()
}

// BigUID names the n-th user of a big group.
func BigUID(n int) string { return fmt.Sprintf("staff%05d", n) }

// Organisation is the LDIF of the test organisation:
//
//	alice, bob, carol, dave, erin, frank (frank is disabled)
//	eng       ← alice, platform      (nested two deep:)
//	platform  ← bob, sre
//	sre       ← carol
//	admins    ← dave
//	helpdesk  ← erin
//	loop-a    ← loop-b, frank; loop-b ← loop-a, dave (a cycle)
//	all-staff ← alice and big users staff00001… (one group of big users)
//
// With ad set every person carries AD's attributes.
func Organisation(big int, ad bool) string {
	var b strings.Builder
	for i, uid := range []string{"alice", "bob", "carol", "dave", "erin", "frank"} {
		p := Person{UID: uid, Mail: uid + "@example.org", AD: ad, Disabled: uid == "frank"}
		p.GUID[0], p.GUID[15] = byte(i+1), 0xAA
		b.WriteString(p.LDIF())
	}
	staff := []string{PersonDN("alice")}
	for n := 1; n <= big; n++ {
		p := Person{UID: BigUID(n), Mail: BigUID(n) + "@example.org", AD: ad}
		p.GUID[0], p.GUID[1], p.GUID[2] = byte(n>>16), byte(n>>8), byte(n)
		p.GUID[15] = 0xBB
		b.WriteString(p.LDIF())
		staff = append(staff, PersonDN(BigUID(n)))
	}
	b.WriteString(GroupLDIF("sre", PersonDN("carol")))
	b.WriteString(GroupLDIF("platform", PersonDN("bob"), GroupDN("sre")))
	b.WriteString(GroupLDIF("eng", PersonDN("alice"), GroupDN("platform")))
	b.WriteString(GroupLDIF("admins", PersonDN("dave")))
	b.WriteString(GroupLDIF("helpdesk", PersonDN("erin")))
	b.WriteString(GroupLDIF("loop-a", GroupDN("loop-b"), PersonDN("frank")))
	b.WriteString(GroupLDIF("loop-b", GroupDN("loop-a"), PersonDN("dave")))
	b.WriteString(GroupLDIF("all-staff", staff...))
	return b.String()
}
