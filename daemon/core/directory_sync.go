package core

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/keyfleet/keyfleet/api"
)

// DirectoryEntry is one user as a directory source has them, in
// keyfleet's terms (the source's maps already applied).
type DirectoryEntry struct {
	// ExternalID is the entry's stable id (entryUUID, objectGUID, a SCIM
	// externalId); renames follow it.
	ExternalID  string
	DN          string
	Username    string
	DisplayName string
	Email       string
	// Groups and Roles are the keyfleet groups and roles the source's
	// maps give the user.
	Groups []string
	Roles  []string
	// Disabled: the user is disabled in the directory.
	Disabled bool
	// Attributes are kept on the link (ExternalLink.Attributes): at most
	// 32, each value at most 256 bytes.
	Attributes map[string]string
}

// DirectorySource says how a sync treats its entries.
type DirectorySource struct {
	Kind string // api.DirectoryLDAP or api.DirectorySCIM
	// ManagedGroups and ManagedRoles are what the source's maps can give:
	// the source decides those of its users' groups and roles and leaves
	// the others (given by hand) alone.
	ManagedGroups []string
	ManagedRoles  []string
	// GroupMap, for a SCIM client, maps one of its groups to the keyfleet
	// group and role it gives ("" for none): entries' Groups and Roles
	// are then read from the source's groups, not from the entry.
	GroupMap func(DirectoryGroup) (group, role string)
	DryRun   bool
}

// directoryBatch is one transaction of a sync.
type directoryBatch struct {
	p      Principal
	source string
	src    DirectorySource
	rep    *api.DirectorySyncReport
	// members maps a user id to the groups (of a SCIM client) they are in;
	// nil for an LDAP source.
	members map[string][]DirectoryGroup
	// policy is the current policy, read once per transaction
	// (currentPolicy) when a user is created.
	policy *batchPolicy
	// strict: an entry keyfleet cannot take is an error (a SCIM client is
	// told), not a note in the report (a sync goes on with the others).
	strict bool
}

// refuse is an entry keyfleet cannot take: an error when strict, else a
// note in the report.
func (b *directoryBatch) refuse(username, id, what string, err error) error {
	if b.strict {
		return err
	}
	b.note(username, id, what, err.Error())
	return nil
}

// counted is how many outcomes the report counts but Unchanged.
func counted(r *api.DirectorySyncReport) int {
	return r.Created + r.Updated + r.Renamed + r.Disabled + r.Enabled + r.Requested + r.Conflicts + r.Skipped
}

// SyncDirectory applies a batch of a source's entries in one transaction:
// new users created, linked users brought in line (profile, username,
// the source's groups and roles, disabled or enabled), grants filed for
// approval. Each entry's outcome is counted into rep; an entry that
// cannot be used is skipped and reported, not an error. A dry run
// computes the same and changes nothing. Errors: *ForbiddenError (p is
// not a directory source), ErrUnavailable and store errors (nothing of
// the batch applied).
func (s *Service) SyncDirectory(ctx context.Context, p Principal, src DirectorySource, entries []DirectoryEntry, rep *api.DirectorySyncReport) error {
	source, err := sourceOf(p)
	if err != nil {
		return err
	}
	return s.directoryUpdate(ctx, p, source, src, rep, func(tx Tx, b *directoryBatch) error {
		for _, e := range entries {
			if err := s.applyEntry(ctx, tx, b, e); err != nil {
				return fmt.Errorf("%s (%s): %w", e.Username, e.ExternalID, err)
			}
		}
		return nil
	})
}

// directoryUpdate runs fn in one write for a source, with the counts it
// makes merged into rep only when the write commits (or, in a dry run,
// when fn completes: the write is then rolled back).
func (s *Service) directoryUpdate(ctx context.Context, p Principal, source string, src DirectorySource, rep *api.DirectorySyncReport, fn func(Tx, *directoryBatch) error) error {
	if err := p.authorize(ProvisionUsers, ""); err != nil {
		return err
	}
	var part api.DirectorySyncReport
	err := s.store.Update(ctx, func(tx Tx) error {
		part = api.DirectorySyncReport{}
		b := &directoryBatch{p: p, source: source, src: src, rep: &part}
		if src.GroupMap != nil {
			if err := b.loadMembers(tx); err != nil {
				return err
			}
		}
		if err := fn(tx, b); err != nil {
			return err
		}
		if src.DryRun {
			return errDryRun
		}
		return nil
	})
	if errors.Is(err, errDryRun) {
		err = nil
	}
	if err == nil {
		mergeReport(rep, part)
	}
	return err
}

// applyEntry creates or brings in line one entry's user.
func (s *Service) applyEntry(ctx context.Context, tx Tx, b *directoryBatch, e DirectoryEntry) error {
	n := counted(b.rep)
	err := s.applyOne(ctx, tx, b, e)
	if err == nil && counted(b.rep) == n {
		b.rep.Unchanged++
	}
	return err
}

func (s *Service) applyOne(ctx context.Context, tx Tx, b *directoryBatch, e DirectoryEntry) error {
	cur, err := b.linkedUser(tx, e)
	switch {
	case errors.Is(err, errUnlinked):
		b.note(e.Username, cur.ID, api.ChangeConflict, fmt.Sprintf("a user made by hand has this username; link it with 'keyfleet directory link %s --source %s' for the directory to manage it", e.Username, b.source))
		return nil
	case isNotFound(err):
		_, err = s.createLinked(ctx, tx, b, e)
		return err
	case err != nil:
		return err
	}
	_, err = s.reconcile(ctx, tx, b, cur, e)
	return err
}

// errUnlinked: the entry's username is held by a user the source does
// not manage.
var errUnlinked = errors.New("username held by an unlinked user")

// linkedUser finds the user an entry stands for: by its stable id, else
// by username when an operator linked that user to the source without an
// id. Errors: ErrNotFound (a new user), errUnlinked.
func (b *directoryBatch) linkedUser(tx ReadTx, e DirectoryEntry) (User, error) {
	if e.ExternalID != "" {
		u, err := tx.UserByExternal(b.source, e.ExternalID)
		if !isNotFound(err) {
			return u, err
		}
	}
	u, err := tx.UserByName(e.Username)
	if err != nil {
		return User{}, err
	}
	if l := u.External; l != nil && l.Source == b.source && (l.ID == "" || e.ExternalID == "") {
		return u, nil
	}
	return u, errUnlinked
}

// createLinked creates an entry's user, linked to the source. A disabled
// entry is not created. Roles beyond "user" wait for approval.
func (s *Service) createLinked(ctx context.Context, tx Tx, b *directoryBatch, e DirectoryEntry) (User, error) {
	if e.Disabled && !b.strict {
		return User{}, nil // not created: nothing to take away
	}
	groups, roles := b.access(User{}, e)
	email := e.Email
	if !b.strict {
		email = validOrEmpty(email)
	}
	want, err := s.newUser(api.CreateUser{Username: e.Username, DisplayName: e.DisplayName, Email: email, Groups: groups, Roles: roles})
	if err != nil {
		return User{}, b.refuse(e.Username, "", api.ChangeSkipped, err)
	}
	c, err := s.splitAccess(tx, b.p, User{Kind: want.Kind}, want)
	if err != nil {
		return User{}, err
	}
	u := c.next
	u.ID = newID(prefixUser, u.CreatedAt, s.cfg.Rand)
	if err := validAttributes(e.Attributes); err != nil {
		return User{}, b.refuse(e.Username, "", api.ChangeSkipped, err)
	}
	u.External = &ExternalLink{Source: b.source, ID: e.ExternalID, DN: e.DN, LinkedAt: u.CreatedAt, Attributes: e.Attributes}
	s.noteHandling(&u, b.p, handledCreated)
	if err := tx.InsertUser(u); errors.Is(err, ErrAlreadyExists) {
		return User{}, b.refuse(e.Username, "", api.ChangeConflict, err)
	} else if err != nil {
		return User{}, err
	}
	ev := s.eventCtx(ctx, b.p, "")
	ev.extra = map[string]string{"source": b.source}
	if err := ev.audit(tx, "user.create", userTarget(u), nil, u.summary()); err != nil {
		return User{}, err
	}
	b.rep.Created++
	b.note(u.Username, u.ID, api.ChangeCreated, "")
	if err := s.fileAccess(ctx, tx, b, &u, c); err != nil {
		return User{}, err
	}
	if u.External.RequestID != "" {
		if err := tx.PutUser(u); err != nil {
			return User{}, err
		}
	}
	if err := s.noteNewUser(ctx, tx, b, u); err != nil {
		return User{}, err
	}
	if e.Disabled { // a SCIM client creating a user inactive
		if err := s.disableLinked(ctx, tx, b, u, false, "created inactive by the SCIM client"); err != nil {
			return User{}, err
		}
		return tx.User(u.ID)
	}
	return u, nil
}

// noteNewUser starts the policy's rules for a user just created: what
// noteEvaluation does, from what is known of a new user (no factor, no
// exemption, no rule applied yet) rather than read back from the store,
// which in a large transaction costs a scan of its pending writes. The
// policy is read once per batch: nothing else changes it within the
// batch's transaction; users alike to it (batchPolicy.newUser) share one
// evaluation.
func (s *Service) noteNewUser(ctx context.Context, tx Tx, b *directoryBatch, u User) error {
	if b.policy == nil {
		n, doc, err := s.currentPolicy(tx)
		if err != nil {
			return err
		}
		b.policy = &batchPolicy{n: n, doc: doc}
	}
	facts := UserFactsOf(u)
	d, started := b.policy.newUser(s, facts, s.now())
	if len(started) == 0 {
		return nil
	}
	return s.rulesStarted(ctx, tx, facts, b.policy.n, d, d.NewlyApplied, started)
}

// access is the groups and roles the source gives a user now: the
// source's part replaced, the rest kept.
func (b *directoryBatch) access(cur User, e DirectoryEntry) (groups, roles []string) {
	eg, er := e.Groups, e.Roles
	if b.src.GroupMap != nil {
		eg, er = b.fromGroups(cur.ID)
	}
	groups = unionOf(minusOf(cur.Groups, b.src.ManagedGroups), eg)
	roles = unionOf(minusOf(cur.Roles, b.src.ManagedRoles), er)
	if cur.ID != "" && len(roles) == 0 {
		roles = defaultRoles(cur.Kind)
	}
	return groups, roles
}

// reconcile brings a linked user in line with their entry: status first
// (a leaver loses access before anything else), then username, profile
// and access.
func (s *Service) reconcile(ctx context.Context, tx Tx, b *directoryBatch, cur User, e DirectoryEntry) (User, error) {
	var err error
	switch {
	case e.Disabled && cur.Status == api.UserActive:
		if err := s.disableLinked(ctx, tx, b, cur, false, "disabled in the directory"); err != nil {
			return cur, err
		}
		if cur, err = tx.User(cur.ID); err != nil {
			return cur, err
		}
	case !e.Disabled && cur.Status == api.UserDisabled && cur.External.Disabled:
		if cur, err = s.enableLinked(ctx, tx, b, cur); err != nil {
			return cur, err
		}
	}
	link := *cur.External
	link.DN, link.Gone, link.Attributes = e.DN, false, e.Attributes
	if link.ID == "" {
		link.ID = e.ExternalID // adopted: linked by hand, now by id
	}
	want := cur
	want.External = &link
	if err := s.entryProfile(&want, e, b); err != nil {
		return cur, err
	}
	want.Groups, want.Roles = b.access(cur, e)
	return s.storeReconciled(ctx, tx, b, cur, want)
}

// entryProfile sets want's username, display name and email from e; a
// value keyfleet cannot take is left as it was, and reported.
func (s *Service) entryProfile(want *User, e DirectoryEntry, b *directoryBatch) error {
	if e.Username != want.Username {
		if err := validUsername(e.Username); err != nil {
			return b.refuse(want.Username, want.ID, api.ChangeSkipped, fmt.Errorf("not renamed: %w", err))
		}
		want.Username = e.Username
	}
	if err := validText("display_name", e.DisplayName, 128); err != nil {
		return b.refuse(want.Username, want.ID, api.ChangeSkipped, err)
	}
	want.DisplayName = e.DisplayName
	if err := validAttributes(e.Attributes); err != nil {
		return b.refuse(want.Username, want.ID, api.ChangeSkipped, err)
	}
	if err := validEmail(e.Email); err != nil && b.strict {
		return err
	}
	want.Email = validOrEmpty(e.Email)
	return nil
}

func validOrEmpty(email string) string {
	if validEmail(email) != nil {
		return ""
	}
	return email
}

// storeReconciled splits the move from cur to want into what happens at
// once and what waits for approval, stores the first and files the
// second.
func (s *Service) storeReconciled(ctx context.Context, tx Tx, b *directoryBatch, cur, want User) (User, error) {
	c, err := s.splitAccess(tx, b.p, cur, want)
	if err != nil {
		return cur, err
	}
	u := c.next
	for _, r := range minusOf(cur.Roles, u.Roles) {
		delete(u.Grants, r)
	}
	if err := s.fileAccess(ctx, tx, b, &u, c); err != nil {
		return cur, err
	}
	if !userChanged(cur, u) && u.Username == cur.Username {
		if linkEqual(cur.External, u.External) {
			return u, nil
		}
		return u, s.writeLink(ctx, tx, b, cur, u)
	}
	u.UpdatedAt = s.now()
	if err := s.writeReconciled(ctx, tx, b, cur, &u); err != nil {
		return cur, err
	}
	if !slices.Equal(cur.Groups, u.Groups) || !slices.Equal(cur.Roles, u.Roles) {
		return u, s.noteEvaluation(ctx, tx, u.ID) // a mover: new rules, new deadlines
	}
	return u, nil
}

// writeLink stores a change of the link alone; adopting a user an operator
// linked by username is audited.
func (s *Service) writeLink(ctx context.Context, tx Tx, b *directoryBatch, cur, u User) error {
	if err := tx.PutUser(u); err != nil {
		return err
	}
	ev := s.eventCtx(ctx, b.p, "")
	switch {
	case cur.External.ID == "" && u.External.ID != "":
		ev.extra = map[string]string{"source": b.source, "external_id": u.External.ID}
		b.note(u.Username, u.ID, api.ChangeUpdated, "linked to its directory entry")
		b.rep.Updated++
		return ev.audit(tx, "user.link", userTarget(u), nil, nil)
	case !maps.Equal(cur.External.Attributes, u.External.Attributes):
		ev.extra = map[string]string{"source": b.source, "profile": "directory attributes"}
		b.note(u.Username, u.ID, api.ChangeUpdated, "directory attributes")
		b.rep.Updated++
		return ev.audit(tx, "user.update", userTarget(u), cur.summary(), u.summary())
	}
	return nil // bookkeeping: the entry's DN, the request on file
}

// writeReconciled stores a changed user and audits the change.
func (s *Service) writeReconciled(ctx context.Context, tx Tx, b *directoryBatch, cur User, u *User) error {
	action := "user.update"
	if u.Username != cur.Username {
		err := tx.RenameUser(cur.Username, *u)
		if errors.Is(err, ErrAlreadyExists) {
			if err := b.refuse(cur.Username, cur.ID, api.ChangeConflict, fmt.Errorf("%w: not renamed to %s: the username is taken", ErrAlreadyExists, u.Username)); err != nil {
				return err
			}
			u.Username = cur.Username
		} else if err != nil {
			return err
		} else {
			action = "user.rename"
		}
	}
	if action == "user.update" {
		if !userChanged(cur, *u) {
			return s.writeLink(ctx, tx, b, cur, *u)
		}
		if err := tx.PutUser(*u); err != nil {
			return err
		}
	}
	ev := s.eventCtx(ctx, b.p, "")
	ev.extra = map[string]string{"source": b.source}
	if len(minusOf(cur.Roles, u.Roles)) > 0 {
		ev.privileged()
	}
	if err := ev.audit(tx, action, userTarget(*u), cur.summary(), u.summary()); err != nil {
		return err
	}
	if action == "user.rename" {
		b.rep.Renamed++
		b.note(u.Username, u.ID, api.ChangeRenamed, "was "+cur.Username)
		return nil
	}
	b.rep.Updated++
	b.note(u.Username, u.ID, api.ChangeUpdated, changeWords(cur, *u))
	return nil
}

// changeWords says what changed, for the report.
func changeWords(a, b User) string {
	var out []string
	if a.DisplayName != b.DisplayName || a.Email != b.Email {
		out = append(out, "profile")
	}
	if g := minusOf(b.Groups, a.Groups); len(g) > 0 {
		out = append(out, "joined "+strings.Join(g, ","))
	}
	if g := minusOf(a.Groups, b.Groups); len(g) > 0 {
		out = append(out, "left "+strings.Join(g, ","))
	}
	if r := minusOf(a.Roles, b.Roles); len(r) > 0 {
		out = append(out, "lost role "+strings.Join(r, ","))
	}
	if len(out) == 0 {
		out = append(out, "link")
	}
	return strings.Join(out, "; ")
}

func linkEqual(a, b *ExternalLink) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Source == b.Source && a.ID == b.ID && a.DN == b.DN && a.Disabled == b.Disabled && a.Gone == b.Gone &&
		a.RequestID == b.RequestID && slices.Equal(a.Suspended, b.Suspended) && maps.Equal(a.Attributes, b.Attributes)
}

// validAttributes bounds what a source may keep on a link.
func validAttributes(attrs map[string]string) error {
	if len(attrs) > 32 {
		return invalid("attributes", "%d attributes; the limit is 32", len(attrs))
	}
	for k, v := range attrs {
		if err := validText(k, v, 256); err != nil || len(k) > 128 {
			return invalid(k, "must be at most 256 bytes without control characters")
		}
	}
	return nil
}

// fileAccess files the part of a change that waits for approval, unless
// the same request is pending or a person already decided it; a pending
// request the source no longer wants is withdrawn. It notes the request
// on u's link (the caller stores u).
func (s *Service) fileAccess(ctx context.Context, tx Tx, b *directoryBatch, u *User, c accessChange) error {
	link := *u.External
	u.External = &link
	var last Approval
	have := false
	if link.RequestID != "" {
		var err error
		last, err = tx.Approval(link.RequestID)
		have = err == nil
	}
	wants := c.needsApproval() && u.Status == api.UserActive // nothing is asked for a disabled user
	same := have && maps.Equal(last.Params, c.params())
	pending := have && last.stateAt(s.now()) == api.ApprovalPending
	if pending && (!wants || !same) {
		if err := s.withdraw(ctx, tx, b.p, last); err != nil {
			return err
		}
		pending = false
	}
	if !wants {
		link.RequestID = ""
		return nil
	}
	if same && (pending || last.stateAt(s.now()) != api.ApprovalExpired) {
		return nil // waiting, or decided by a person: not asked again until the directory changes
	}
	r := request{action: api.ActionUserAccess, perm: ProvisionUsers, target: userTarget(*u), owner: u.ID, params: c.params()}
	a, err := s.requestTx(ctx, tx, b.p, fmt.Sprintf("the directory (%s) asks to change the access of %s", b.source, u.Username), r)
	if errors.Is(err, ErrAlreadyExists) {
		b.note(u.Username, u.ID, api.ChangeRequested, "waits: "+err.Error())
		return nil
	}
	if err != nil {
		return err
	}
	link.RequestID = a.ID
	b.rep.Requested++
	b.rep.Approvals = append(b.rep.Approvals, a.ID)
	b.note(u.Username, u.ID, api.ChangeRequested, fmt.Sprintf("approval %s: %s", a.ID, accessWords(c)))
	return nil
}

func accessWords(c accessChange) string {
	var out []string
	for _, x := range []struct {
		what string
		l    []string
	}{{"grant ", c.grant}, {"remove role ", c.removeRoles}, {"leave ", c.removeGroups}} {
		if len(x.l) > 0 {
			out = append(out, x.what+strings.Join(x.l, ","))
		}
	}
	return strings.Join(out, "; ")
}

// withdraw cancels a pending request the source asked for and no longer
// wants.
func (s *Service) withdraw(ctx context.Context, tx Tx, p Principal, a Approval) error {
	now := s.now()
	a.State, a.DecidedBy, a.DecidedAt, a.Comment = api.ApprovalCancelled, ptr(p.Actor()), &now, "the directory no longer asks for this"
	if err := tx.PutApproval(a); err != nil {
		return err
	}
	ev := s.eventCtx(ctx, p, a.Comment)
	ev.extra = map[string]string{"approval_id": a.ID, "requested_action": a.Action}
	return ev.audit(tx, "approval.cancel", targetRef{a.TargetType, a.TargetID, a.TargetName},
		map[string]any{"state": api.ApprovalPending}, map[string]any{"state": a.State})
}

// note records one change in the report, up to api.MaxSyncChanges.
func (b *directoryBatch) note(username, id, what, detail string) {
	switch what {
	case api.ChangeConflict:
		b.rep.Conflicts++
	case api.ChangeSkipped:
		b.rep.Skipped++
	}
	if len(b.rep.Changes) >= api.MaxSyncChanges {
		b.rep.ChangesOmitted++
		return
	}
	b.rep.Changes = append(b.rep.Changes, api.DirectoryChange{Username: username, UserID: id, What: what, Detail: detail})
}

// MergeSyncReport adds the counts and changes of part (one batch's) to
// rep.
func MergeSyncReport(rep *api.DirectorySyncReport, part api.DirectorySyncReport) {
	mergeReport(rep, part)
}

// mergeReport adds part's counts and changes to rep.
func mergeReport(rep *api.DirectorySyncReport, part api.DirectorySyncReport) {
	rep.Created += part.Created
	rep.Updated += part.Updated
	rep.Renamed += part.Renamed
	rep.Disabled += part.Disabled
	rep.Enabled += part.Enabled
	rep.Unchanged += part.Unchanged
	rep.Requested += part.Requested
	rep.Conflicts += part.Conflicts
	rep.Skipped += part.Skipped
	rep.Approvals = append(rep.Approvals, part.Approvals...)
	room := max(0, api.MaxSyncChanges-len(rep.Changes))
	rep.Changes = append(rep.Changes, part.Changes[:min(room, len(part.Changes))]...)
	rep.ChangesOmitted += part.ChangesOmitted + len(part.Changes) - min(room, len(part.Changes))
}
