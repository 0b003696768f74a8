package core

import (
	"context"
	"maps"
	"slices"

	"github.com/keyfleet/keyfleet/api"
)

// maxDriftNames bounds the names a status lists (the counts are whole).
const maxDriftNames = 50

// RecordDirectorySync keeps a sync's report as p's source's last, with
// the cursor the next incremental sync starts from ("" keeps the one
// kept). A sync that changed something, or failed, is audited
// (directory.sync, with the counts); a dry run is not kept.
func (s *Service) RecordDirectorySync(ctx context.Context, p Principal, kind string, rep api.DirectorySyncReport, cursor string) error {
	source, err := sourceOf(p)
	if err != nil {
		return err
	}
	if rep.DryRun {
		return nil
	}
	rep.Source = source
	return s.store.Update(ctx, func(tx Tx) error {
		st, err := tx.DirectoryState(source)
		if err != nil && !isNotFound(err) {
			return err
		}
		st.Source, st.Kind, st.Last = source, kind, &rep
		if rep.Error == "" {
			st.LastSuccessAt = ptr(rep.FinishedAt)
			if rep.Mode == api.SyncFull {
				st.LastFullAt = ptr(rep.FinishedAt)
			}
			if cursor != "" {
				st.Cursor = cursor
			}
		}
		if err := tx.PutDirectoryState(st); err != nil {
			return err
		}
		if rep.Error == "" && rep.Created+rep.Updated+rep.Renamed+rep.Disabled+rep.Enabled+rep.Requested+rep.Conflicts == 0 {
			return nil
		}
		return s.auditSync(ctx, tx, p, source, rep)
	})
}

func (s *Service) auditSync(ctx context.Context, tx Tx, p Principal, source string, rep api.DirectorySyncReport) error {
	ev := s.eventCtx(ctx, p, rep.Error)
	ev.extra = details("source", source, "mode", rep.Mode)
	after := map[string]any{"seen": rep.Seen, "created": rep.Created, "updated": rep.Updated, "renamed": rep.Renamed,
		"disabled": rep.Disabled, "enabled": rep.Enabled, "requested": rep.Requested, "conflicts": rep.Conflicts, "skipped": rep.Skipped}
	if rep.Error != "" {
		ev.extra["error"] = "true"
	}
	return ev.audit(tx, "directory.sync", targetRef{"directory", source, source}, nil, after)
}

// DirectoryCursor is where p's source's next incremental sync starts, and
// whether a full sync ever completed ("" and false before the first).
func (s *Service) DirectoryCursor(ctx context.Context, p Principal) (string, bool, error) {
	source, err := sourceOf(p)
	if err != nil {
		return "", false, err
	}
	var st DirectoryState
	err = s.store.View(ctx, func(tx ReadTx) error {
		st, err = tx.DirectoryState(source)
		return err
	})
	if isNotFound(err) {
		return "", false, nil
	}
	return st.Cursor, st.LastFullAt != nil, err
}

// DirectoryOverview reads every source's state and drift: for each, its
// last sync, how many users it provides, which of them it no longer has,
// and which directory usernames are held by users made by hand; and the
// active people no source provides. configured names the sources in the
// configuration (and their kinds), which are shown even before a sync.
func (s *Service) DirectoryOverview(ctx context.Context, p Principal, configured map[string]string) (api.DirectoryOverview, error) {
	if err := p.authorize(ReadDirectory, ""); err != nil {
		return api.DirectoryOverview{}, err
	}
	var out api.DirectoryOverview
	err := s.store.View(ctx, func(tx ReadTx) error {
		out = api.DirectoryOverview{}
		byName, err := sourceStatuses(tx, configured)
		if err != nil {
			return err
		}
		err = forEach(tx.Users, UserFilter{}, func(u User) error {
			countDrift(&out, byName, u)
			return nil
		})
		if err != nil {
			return err
		}
		for _, name := range slices.Sorted(maps.Keys(byName)) {
			out.Sources = append(out.Sources, *byName[name])
		}
		return nil
	})
	return out, err
}

// sourceStatuses starts a status for every kept and configured source.
func sourceStatuses(tx ReadTx, configured map[string]string) (map[string]*api.DirectoryStatus, error) {
	states, err := tx.DirectoryStates()
	if err != nil {
		return nil, err
	}
	out := map[string]*api.DirectoryStatus{}
	for _, st := range states {
		_, ok := configured[st.Source]
		out[st.Source] = &api.DirectoryStatus{Source: st.Source, Kind: st.Kind, Configured: ok, Last: st.Last,
			LastSuccessAt: st.LastSuccessAt, LastFullAt: st.LastFullAt}
		if st.Last != nil {
			for _, c := range st.Last.Changes {
				if c.What == api.ChangeConflict && len(out[st.Source].Conflicts) < maxDriftNames {
					out[st.Source].Conflicts = append(out[st.Source].Conflicts, c.Username)
				}
			}
		}
	}
	for name, kind := range configured {
		if out[name] == nil {
			out[name] = &api.DirectoryStatus{Source: name, Kind: kind, Configured: true}
		}
	}
	return out, nil
}

// countDrift counts one user into the overview.
func countDrift(out *api.DirectoryOverview, byName map[string]*api.DirectoryStatus, u User) {
	if u.External == nil {
		if u.Kind == api.KindPerson && u.Status == api.UserActive {
			out.Unlinked++
			if len(out.UnlinkedUsers) < maxDriftNames {
				out.UnlinkedUsers = append(out.UnlinkedUsers, u.Username)
			}
		}
		return
	}
	st := byName[u.External.Source]
	if st == nil {
		kind := api.DirectoryLDAP
		if isSCIMSource(u.External.Source) {
			kind = api.DirectorySCIM
		}
		st = &api.DirectoryStatus{Source: u.External.Source, Kind: kind}
		byName[u.External.Source] = st
	}
	st.Linked++
	if u.Status == api.UserActive {
		st.Active++
	}
	if u.External.Gone && len(st.Gone) < maxDriftNames {
		st.Gone = append(st.Gone, u.Username)
	}
}

func isSCIMSource(source string) bool { return len(source) > 5 && source[:5] == "scim:" }

// LinkUser hands a user made by hand to a directory source: by their
// stable id there, or (externalID "") by username at the source's next
// sync. From then on the source manages them. Errors: *ValidationError,
// ErrNotFound, ErrAlreadyExists (linked already, or the id is another
// user's), *ForbiddenError.
func (s *Service) LinkUser(ctx context.Context, p Principal, ref, source, externalID string) (User, error) {
	if err := p.authorize(LinkDirectory, ""); err != nil {
		return User{}, err
	}
	if !ValidSourceName(source) && !(isSCIMSource(source) && validUsername(source[5:]) == nil) {
		return User{}, invalid("source", "%q is not a directory source: give the LDAP source's name from keyfleetd.yaml, or scim:<account> for a SCIM client", source)
	}
	if err := validText("external_id", externalID, 256); err != nil {
		return User{}, err
	}
	var u User
	err := s.store.Update(ctx, func(tx Tx) error {
		var err error
		if u, err = lookupUser(tx, ref); err != nil {
			return err
		}
		if err := linkable(tx, u, source, externalID); err != nil {
			return err
		}
		u.External = &ExternalLink{Source: source, ID: externalID, LinkedAt: s.now(), LinkedBy: p.UserID}
		u.UpdatedAt = s.now()
		if err := tx.PutUser(u); err != nil {
			return err
		}
		ev := s.eventCtx(ctx, p, "")
		ev.extra = details("source", source, "external_id", externalID)
		ev.privileged()
		return ev.audit(tx, "user.link", userTarget(u), nil, nil)
	})
	return u, err
}

// linkable checks u can be linked to source under externalID.
func linkable(tx ReadTx, u User, source, externalID string) error {
	if u.External != nil {
		return &TransitionError{Kind: "user", ID: u.Username, From: "linked to " + u.External.Source, Action: "link",
			Hint: "unlink it first ('keyfleet directory unlink " + u.Username + "')"}
	}
	if u.Kind != api.KindPerson {
		return invalid("user", "%s is a service account; only people come from a directory", u.Username)
	}
	if externalID == "" {
		return nil
	}
	other, err := tx.UserByExternal(source, externalID)
	switch {
	case err == nil:
		return &TransitionError{Kind: "user", ID: u.Username, From: "unlinked", Action: "link",
			Hint: "the entry " + externalID + " of " + source + " is linked to " + other.Username + " already"}
	case !isNotFound(err):
		return err
	}
	return nil
}

// UnlinkUser takes a user away from their directory source: keyfleet
// keeps them as they are, and the source no longer changes them.
func (s *Service) UnlinkUser(ctx context.Context, p Principal, ref string) (User, error) {
	if err := p.authorize(LinkDirectory, ""); err != nil {
		return User{}, err
	}
	var u User
	err := s.store.Update(ctx, func(tx Tx) error {
		var err error
		if u, err = lookupUser(tx, ref); err != nil {
			return err
		}
		if u.External == nil {
			return &TransitionError{Kind: "user", ID: u.Username, From: "unlinked", Action: "unlink", Hint: "no directory source manages it"}
		}
		source := u.External.Source
		u.External, u.UpdatedAt = nil, s.now()
		if err := tx.PutUser(u); err != nil {
			return err
		}
		ev := s.eventCtx(ctx, p, "")
		ev.extra = details("source", source)
		ev.privileged()
		return ev.audit(tx, "user.unlink", userTarget(u), nil, nil)
	})
	return u, err
}
