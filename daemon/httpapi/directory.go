package httpapi

import (
	"context"
	"net/http"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/core"
)

// DirectoryAPI is what the API needs of the directory sources
// (*directory.Directory implements it).
type DirectoryAPI interface {
	Overview(ctx context.Context, p core.Principal) (api.DirectoryOverview, error)
	Sync(ctx context.Context, p core.Principal, req api.DirectorySync) (api.DirectorySyncReport, error)
}

// registerDirectory adds the directory sources' status, the sync and
// links (docs/directory.md). Without a DirectoryAPI the status still
// shows what users are linked to, and a sync says none is configured.
func (h *Handler) registerDirectory(d DirectoryAPI) {
	h.route("GET /v1/directory/status", core.ReadDirectory, func(r *http.Request, p core.Principal) (int, any, error) {
		if d == nil {
			ov, err := h.svc.DirectoryOverview(r.Context(), p, nil)
			return http.StatusOK, ov, err
		}
		ov, err := d.Overview(r.Context(), p)
		return http.StatusOK, ov, err
	})
	h.route("POST /v1/directory/sync", core.SyncDirectory, func(r *http.Request, p core.Principal) (int, any, error) {
		var in api.DirectorySync
		if err := decode(r, &in, true); err != nil {
			return 0, nil, err
		}
		if d == nil {
			return 0, nil, &core.ValidationError{Field: "source", Reason: "no LDAP directory is configured: add a directory.ldap section to keyfleetd.yaml (docs/directory.md)"}
		}
		rep, err := d.Sync(r.Context(), p, in)
		return http.StatusOK, rep, err
	})
	h.route("POST /v1/directory/links", core.LinkDirectory, func(r *http.Request, p core.Principal) (int, any, error) {
		var in api.DirectoryLink
		if err := decode(r, &in, false); err != nil {
			return 0, nil, err
		}
		u, err := h.svc.LinkUser(r.Context(), p, in.User, in.Source, in.ExternalID)
		return http.StatusOK, u.API(), err
	})
	h.route("DELETE /v1/directory/links/{user}", core.LinkDirectory, func(r *http.Request, p core.Principal) (int, any, error) {
		u, err := h.svc.UnlinkUser(r.Context(), p, r.PathValue("user"))
		return http.StatusOK, u.API(), err
	})
}
