package api

import "time"

// Directory source kinds.
const (
	DirectoryLDAP = "ldap"
	DirectorySCIM = "scim"
)

// Directory sync modes.
const (
	SyncFull        = "full"
	SyncIncremental = "incremental"
)

// What a directory sync did to one user (DirectoryChange.What).
const (
	ChangeCreated   = "created"
	ChangeUpdated   = "updated"
	ChangeRenamed   = "renamed"
	ChangeDisabled  = "disabled"
	ChangeEnabled   = "enabled"
	ChangeRequested = "requested" // a grant or weakening change waits for approval
	ChangeConflict  = "conflict"  // the username belongs to a user the source does not manage
	ChangeSkipped   = "skipped"   // the entry cannot be used (its problem is in Detail)
	ChangeWarning   = "warning"   // the read went another way than configured (Detail says how); nothing was left out
)

// DirectorySyncReport is what one sync of a source did, or would do (a dry
// run): counts, and the changes themselves (at most MaxSyncChanges).
type DirectorySyncReport struct {
	Source     string    `json:"source"`
	Mode       string    `json:"mode"` // full or incremental
	DryRun     bool      `json:"dry_run,omitempty"`
	StartedAt  time.Time `json:"started_at"`
	FinishedAt time.Time `json:"finished_at"`
	// Seen is how many directory entries the sync read.
	Seen      int `json:"seen"`
	Created   int `json:"created"`
	Updated   int `json:"updated"`
	Renamed   int `json:"renamed"`
	Disabled  int `json:"disabled"`
	Enabled   int `json:"enabled"`
	Unchanged int `json:"unchanged"`
	// Requested counts access changes filed for a second person's
	// approval (Approvals names them).
	Requested int      `json:"requested"`
	Approvals []string `json:"approvals,omitempty"`
	Conflicts int      `json:"conflicts"`
	Skipped   int      `json:"skipped"`
	// Error is why the sync stopped; nothing of a sync that stopped while
	// reading the directory was applied.
	Error   string            `json:"error,omitempty"`
	Changes []DirectoryChange `json:"changes,omitempty"`
	// ChangesOmitted counts changes left out of Changes.
	ChangesOmitted int `json:"changes_omitted,omitempty"`
	// MemoryBytes is about how much of keyfleetd's memory the directory
	// as read takes, kept between syncs as the base of the incremental
	// ones (an LDAP source; docs/operations.md, "Memory").
	MemoryBytes int64 `json:"memory_bytes,omitempty"`
}

// MaxSyncChanges bounds DirectorySyncReport.Changes.
const MaxSyncChanges = 200

// DirectoryChange is one user's change in a sync.
type DirectoryChange struct {
	Username string `json:"username"`
	UserID   string `json:"user_id,omitempty"`
	What     string `json:"what"`
	Detail   string `json:"detail,omitempty"`
}

// DirectoryStatus is one source's state (GET /v1/directory/status).
type DirectoryStatus struct {
	Source string `json:"source"`
	Kind   string `json:"kind"`
	// Configured is false for a source keyfleet has users of but no
	// longer has in its configuration.
	Configured    bool                 `json:"configured"`
	Last          *DirectorySyncReport `json:"last,omitempty"`
	LastSuccessAt *time.Time           `json:"last_success_at,omitempty"`
	LastFullAt    *time.Time           `json:"last_full_at,omitempty"`
	NextSyncAt    *time.Time           `json:"next_sync_at,omitempty"`
	// Linked counts the users the source provides; Active those of them
	// active.
	Linked int `json:"linked"`
	Active int `json:"active"`
	// Gone lists linked users the source no longer has (disabled by it,
	// still in keyfleet until someone asks for their deletion and a second
	// person approves).
	Gone []string `json:"gone,omitempty"`
	// Conflicts are directory usernames held by users made by hand (link
	// them with 'keyfleet directory link').
	Conflicts []string `json:"conflicts,omitempty"`
}

// DirectoryOverview is GET /v1/directory/status: every source, and the
// active people no source provides (made by hand).
type DirectoryOverview struct {
	Sources []DirectoryStatus `json:"sources"`
	// Unlinked counts active people made by hand; UnlinkedUsers names
	// the first of them.
	Unlinked      int      `json:"unlinked"`
	UnlinkedUsers []string `json:"unlinked_users,omitempty"`
}

// DirectorySync is the body of POST /v1/directory/sync.
type DirectorySync struct {
	// Source names the LDAP source (default: the only one).
	Source string `json:"source,omitempty"`
	// DryRun shows what the sync would do and changes nothing.
	DryRun bool `json:"dry_run,omitempty"`
	// Incremental reads only what changed since the last sync, where the
	// directory allows; the default is a full sync.
	Incremental bool `json:"incremental,omitempty"`
	// Force lets a sync disable more leavers than the configured limit.
	Force bool `json:"force,omitempty"`
}

// DirectoryLink is the body of POST /v1/directory/links: link a user made
// by hand to a source, by their stable id there or (none given) by
// username at the source's next sync.
type DirectoryLink struct {
	User       string `json:"user"`
	Source     string `json:"source"`
	ExternalID string `json:"external_id,omitempty"`
}
