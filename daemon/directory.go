package daemon

import (
	"context"
	"net/http"
	"strings"

	"github.com/keyfleet/keyfleet/daemon/directory"
	"github.com/keyfleet/keyfleet/daemon/directory/scim"
)

// buildDirectory makes the directory sources the configuration names:
// the LDAP sync and the SCIM service provider (docs/directory.md).
func (s *Server) buildDirectory() error {
	d, err := directory.New(s.cfg.Directory, s.svc, s.cfg.Web.Origin, directory.Options{Logger: s.log, Registerer: s.reg})
	if err != nil {
		return err
	}
	s.dir = d
	return nil
}

// withSCIM serves /scim/v2 beside everything else, when SCIM is enabled,
// with the API's request ids, log lines and request metrics.
func (s *Server) withSCIM(next http.Handler) http.Handler {
	h := s.dir.SCIM()
	if h == nil {
		return next
	}
	h = s.api.Observed(h)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == scim.Prefix || strings.HasPrefix(r.URL.Path, scim.Prefix+"/") {
			h.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// runDirectory starts the periodic LDAP sync (with PostgreSQL, leaderWork
// runs it on the leader instead); the function it returns stops it and
// waits.
func (s *Server) runDirectory() func() {
	if s.elector != nil {
		return func() {} // leaderWork runs it
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.dir.Run(ctx) }()
	return func() { cancel(); <-done }
}
