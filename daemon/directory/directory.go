package directory

import (
	"context"
	"fmt"
	"net/http"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/core"
	"github.com/keyfleet/keyfleet/daemon/directory/scim"
)

// Directory is what keyfleetd runs of its directory configuration: the
// LDAP sync (when configured) and the SCIM service provider (when
// enabled).
type Directory struct {
	cfg  Config
	svc  *core.Service
	sync *Syncer
	scim *scim.Handler
}

// New validates cfg and builds the configured parts. baseURL is where
// clients reach keyfleetd ("https://keyfleet.example.com:8443"), for
// SCIM's meta.location.
func New(cfg Config, svc *core.Service, baseURL string, o Options) (*Directory, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	o.defaults()
	d := &Directory{cfg: cfg, svc: svc}
	if d.cfg.LDAPEnabled() {
		rd := &ldapReader{cfg: &d.cfg.LDAP, now: o.Now, pageHook: o.PageHook}
		d.sync = newSyncer(&d.cfg.LDAP, svc, rd, o)
	}
	if cfg.SCIM.Enabled {
		groups := map[string]scim.GroupMap{}
		for name, m := range cfg.SCIM.Groups {
			groups[name] = scim.GroupMap{Group: m.Group, Role: m.Role}
		}
		h, err := scim.New(scim.Config{Service: svc, Logger: o.Logger.With("component", "scim"), BaseURL: baseURL + scim.Prefix,
			Groups: groups, AutoGroups: cfg.SCIM.AutoGroups, MaxResults: cfg.SCIM.MaxResults})
		if err != nil {
			return nil, err
		}
		d.scim = h
	}
	return d, nil
}

// SCIM is the SCIM service provider to serve under scim.Prefix; nil when
// it is not enabled.
func (d *Directory) SCIM() http.Handler {
	if d == nil || d.scim == nil {
		return nil
	}
	return d.scim
}

// Run runs the periodic LDAP sync until ctx ends (at once when none is
// configured).
func (d *Directory) Run(ctx context.Context) {
	if d != nil && d.sync != nil {
		d.sync.Run(ctx)
	}
}

// Sync runs the LDAP sync now, for a person allowed to (SyncDirectory).
// Errors: *core.ForbiddenError, *core.ValidationError (no such source),
// and Syncer.Sync's.
func (d *Directory) Sync(ctx context.Context, p core.Principal, req api.DirectorySync) (api.DirectorySyncReport, error) {
	if !p.Can(core.SyncDirectory, "") {
		return api.DirectorySyncReport{}, &core.ForbiddenError{Principal: p.Username, Action: core.SyncDirectory}
	}
	if d == nil || d.sync == nil {
		return api.DirectorySyncReport{}, &core.ValidationError{Field: "source",
			Reason: "no LDAP directory is configured: add a directory.ldap section to keyfleetd.yaml (docs/directory.md); SCIM clients push their changes themselves"}
	}
	if req.Source != "" && req.Source != d.sync.Name() {
		return api.DirectorySyncReport{}, &core.ValidationError{Field: "source", Reason: fmt.Sprintf("%q is not configured; the LDAP source is %q", req.Source, d.sync.Name())}
	}
	return d.sync.Sync(ctx, req)
}

// Overview is every source's status and drift, for a person allowed to
// read it (ReadDirectory).
func (d *Directory) Overview(ctx context.Context, p core.Principal) (api.DirectoryOverview, error) {
	configured := map[string]string{}
	if d != nil && d.sync != nil {
		configured[d.sync.Name()] = api.DirectoryLDAP
	}
	ov, err := d.svc.DirectoryOverview(ctx, p, configured)
	if err != nil || d.sync == nil {
		return ov, err
	}
	for i := range ov.Sources {
		if ov.Sources[i].Source == d.sync.Name() {
			if next := d.sync.NextSync(); !next.IsZero() {
				ov.Sources[i].NextSyncAt = &next
			}
		}
	}
	return ov, nil
}
