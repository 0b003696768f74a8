// Package directory brings an organisation's people into keyfleet from
// its directory, two ways (docs/directory.md):
//
//   - An LDAP / Active Directory sync (Syncer): keyfleetd reads the users
//     under a base DN (RFC 2696 paged search, LDAPS or StartTLS with a
//     configured CA, a read-only bind), follows nested groups (AD's
//     LDAP_MATCHING_RULE_IN_CHAIN where the server has it, each answer
//     checked against the group's direct members, else by reading the
//     groups; AD's large member lists are read range by range), maps
//     groups to keyfleet groups and roles, and
//     applies the result through daemon/core as the source's own
//     principal. Every interval it reads only what changed
//     (modifyTimestamp, or AD's uSNChanged); every full interval it reads
//     everything, which finds the users who left.
//   - A SCIM 2.0 service provider (package scim) that Entra ID, Okta and
//     other identity providers push users and groups to.
//
// Either way a user keeps one stable external id (entryUUID, objectGUID,
// a SCIM id), so renames follow the person and their keys. Grants the
// directory asks for wait for a second person; leavers are disabled and
// their factors suspended at once; users made by hand are left alone
// until an operator links them. The test kit (directorytest) runs a real
// slapd, also as a stand-in for an Active Directory domain controller,
// and a small LDAP server of its own for AD's ranged retrieval and
// IN_CHAIN, which slapd cannot serve.
package directory
