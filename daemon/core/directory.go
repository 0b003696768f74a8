package core

import (
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/keyfleet/keyfleet/api"
)

// Users from a directory. A directory source (the LDAP/Active Directory
// sync of daemon/directory, or a SCIM client) links the users it provides
// (User.External) and from then on decides their profile, their username
// (renames follow the person through a stable external id), the groups
// and roles its maps name, and whether they are active. It acts as its
// own principal, never as System, so that:
//
//   - what it grants waits for a person's approval like any other grant
//     (a user.access request the directory asked for; the user it is about
//     may not decide it, since no person stands behind the request);
//   - what it takes away (a leaver disabled and their factors suspended,
//     a role removed) happens at once, audited with the directory as
//     actor;
//   - revoking factors and deleting users still go through the two-person
//     rule: the directory never does either.
//
// Users made by hand are left alone unless an operator links them
// (LinkUser). The sync logic is in directory_sync.go, leavers in
// directory_leavers.go.

// ExternalLink ties a user to one directory source.
type ExternalLink struct {
	// Source names the source: the LDAP source's configured name, or
	// "scim:<service account>" for a SCIM client.
	Source string `json:"source"`
	// ID is the entry's stable id in the source (entryUUID, objectGUID,
	// a SCIM externalId). Empty for a user an operator linked without
	// one: the source adopts them by username at its next sync.
	ID string `json:"id,omitempty"`
	// DN is the LDAP entry's distinguished name when last seen.
	DN       string    `json:"dn,omitempty"`
	LinkedAt time.Time `json:"linked_at"`
	// LinkedBy is the operator who linked a user made by hand ("" when
	// the source created the user).
	LinkedBy string `json:"linked_by,omitempty"`
	// Disabled says the source disabled the user (disabled there, or
	// gone); only then may the source enable them again. Gone says the
	// entry is no longer in the source.
	Disabled bool `json:"disabled,omitempty"`
	Gone     bool `json:"gone,omitempty"`
	// Suspended are the factors the source suspended when it disabled the
	// user: resumed if it enables them again.
	Suspended []string `json:"suspended,omitempty"`
	// RequestID is the access request the source last filed for the
	// user: not filed again while it waits, nor once a person decided it,
	// until what the source asks for changes.
	RequestID string `json:"request_id,omitempty"`
	// Attributes are what else the source says about the user that
	// keyfleet keeps for it (a SCIM client's name parts, employee number,
	// department): shown back to the source, never used for access.
	Attributes map[string]string `json:"attributes,omitempty"`
}

// DirectoryState is what keyfleet keeps about one source: its last sync
// and the incremental cursor.
type DirectoryState struct {
	Source string `json:"source"`
	Kind   string `json:"kind"` // api.DirectoryLDAP or api.DirectorySCIM
	// Last is the newest sync's report (a dry run is not kept).
	Last *api.DirectorySyncReport `json:"last,omitempty"`
	// LastSuccessAt and LastFullAt are when a sync last completed, and a
	// full one.
	LastSuccessAt *time.Time `json:"last_success_at,omitempty"`
	LastFullAt    *time.Time `json:"last_full_at,omitempty"`
	// Cursor is where the next incremental sync starts (the source's own
	// notation: a modifyTimestamp, a uSNChanged).
	Cursor string `json:"cursor,omitempty"`
}

// DirectoryGroup is a group a SCIM client keeps in keyfleet: its members
// get the keyfleet group or role the group maps to.
type DirectoryGroup struct {
	Source      string    `json:"source"`
	ID          string    `json:"id"`
	DisplayName string    `json:"display_name"`
	ExternalID  string    `json:"external_id,omitempty"`
	Members     []string  `json:"members,omitempty"` // user ids, sorted
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
	// Version counts the group's changes (its ETag).
	Version int `json:"version"`
}

// DirectoryReadTx is what a store reads for directory sources. Getters
// return a *NotFoundError for missing records.
type DirectoryReadTx interface {
	// UserByExternal finds the user linked to a source's entry.
	UserByExternal(source, externalID string) (User, error)
	DirectoryState(source string) (DirectoryState, error)
	DirectoryStates() ([]DirectoryState, error)
	DirectoryGroup(source, id string) (DirectoryGroup, error)
	// DirectoryGroups lists a source's groups by id.
	DirectoryGroups(source string, p PageReq) ([]DirectoryGroup, string, error)
}

// DirectoryTx is what a store writes for directory sources. PutUser,
// InsertUser and DeleteUser keep the index UserByExternal reads.
type DirectoryTx interface {
	// RenameUser stores u (whose username changed from old); it returns
	// ErrAlreadyExists when u.Username is taken.
	RenameUser(old string, u User) error
	PutDirectoryState(st DirectoryState) error
	PutDirectoryGroup(g DirectoryGroup) error
	DeleteDirectoryGroup(g DirectoryGroup) error
}

// ErrTxnTooLarge: a transaction holds more changes than the store takes
// in one (Badger: a share of its memtable). A directory sync splits its
// batch and tries again.
var ErrTxnTooLarge = errors.New("too many changes for one transaction")

// Permissions of directory sources.
const (
	// ProvisionUsers is a directory source's own permission: create,
	// change and disable the users it links. The LDAP sync's principal
	// and a SCIM client's token (the "scim" role) hold it, nobody else.
	ProvisionUsers Action = "directory.provision"
	// ReadDirectory shows the sources' status and drift.
	ReadDirectory Action = "directory.read"
	// SyncDirectory runs a sync now (or a dry run).
	SyncDirectory Action = "directory.sync"
	// LinkDirectory links a user made by hand to a source, or unlinks one.
	LinkDirectory Action = "directory.link"
)

// Principal.Auth of a directory sync, and the pseudo-role it carries.
const (
	authDirectory = "directory"
	roleDirectory = "directory"
	// directoryActorID is the audit trail's actor id of a directory sync.
	directoryActorID = "directory"
)

func init() {
	// The roles that see and run directory syncs, beside the one table
	// in authz.go.
	for _, r := range []string{api.RoleAdmin, api.RoleSecurityOfficer, api.RoleHelpdesk, api.RoleAuditor} {
		grants[r][ReadDirectory] = All
	}
	grants[api.RoleAdmin][SyncDirectory] = All
	grants[api.RoleAdmin][LinkDirectory] = All
	// A SCIM client: provisioning only, of its own source's users.
	grants[api.RoleScim] = allOf(All, ReadSelf, ProvisionUsers)
	// The LDAP sync: provisioning only. Not assignable.
	grants[roleDirectory] = allOf(All, ProvisionUsers)
}

// DirectoryPrincipal is the LDAP/AD sync of a source acting: not System,
// so what it grants waits for a person's approval.
func DirectoryPrincipal(source string) Principal {
	return Principal{UserID: directoryActorID, Username: "directory:" + source, Roles: []string{roleDirectory}, Auth: authDirectory}
}

// isDirectory reports whether p is a directory sync (DirectoryPrincipal).
func (p Principal) isDirectory() bool { return p.UserID == directoryActorID && p.Auth == authDirectory }

// SCIMSource is the source a SCIM client's users belong to.
func SCIMSource(account string) string { return "scim:" + account }

// sourceOf is the source p provisions: its own, and only that one. A
// SCIM client is a token of a service account holding only the scim role.
func sourceOf(p Principal) (string, error) {
	switch {
	case p.isDirectory():
		return strings.TrimPrefix(p.Username, "directory:"), nil
	case slices.Equal(p.Roles, []string{api.RoleScim}) && p.Auth == "token":
		return SCIMSource(p.Username), nil
	}
	return "", &ForbiddenError{Principal: p.Username, Action: ProvisionUsers,
		Reason: "only a directory source provisions users: the LDAP sync, or a SCIM client's token carrying the scim role and nothing else"}
}

// ValidSourceName reports whether name can name an LDAP source: 1-32
// lower-case letters, digits, '-' and '_' (not "scim", which prefixes
// SCIM clients' sources).
func ValidSourceName(name string) bool {
	if name == "" || len(name) > 32 || strings.HasPrefix(name, "scim") {
		return false
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// machineRequest checks a decision on a request a directory source asked
// for: no person stands behind it, so the person it is about may not
// decide it (a security officer the directory put in a helpdesk group
// cannot approve their own grant). It reports handled when the requester
// is the LDAP sync, which has no user record to check.
func machineRequest(tx ReadTx, p Principal, a Approval) (handled bool, err error) {
	fromDirectory := a.RequestedBy.ID == directoryActorID && a.RequestedBy.Auth == authDirectory
	if !fromDirectory {
		req, err := tx.User(a.RequestedBy.ID)
		if err != nil || req.Kind != api.KindService {
			return false, nil
		}
	}
	if a.TargetType == "user" && a.TargetID == p.UserID {
		return true, &ForbiddenError{Principal: p.Username, Action: DecideApprovals,
			Reason: "the request is about your own account and was asked for by a directory source or service account, not a person: another approver must decide it"}
	}
	return fromDirectory, nil
}
