package daemon

import (
	"context"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/keyfleet/keyfleet/daemon/httpapi"
	"github.com/keyfleet/keyfleet/daemon/radius"
)

// FirstLoginConfig is keyfleetd.yaml's first_login section.
type FirstLoginConfig struct {
	// Enabled lets the RADIUS listener (with first_factor ldap) and the
	// PAM module answer a user who has no factor and must enrol with a
	// temporary access pass to redeem at the web pages' /welcome. Off by
	// default: see docs/radius.md before turning it on.
	Enabled bool `yaml:"enabled"`
	// PassTTL is how long such a pass lasts (default 1h, 10m to 8h).
	PassTTL Duration `yaml:"pass_ttl"`
}

func (c *Config) loginDefaults() {
	c.Radius.Defaults()
	if c.FirstLogin.PassTTL.Duration == 0 {
		c.FirstLogin.PassTTL.Duration = time.Hour
	}
}

func (c *Config) validateLogin() []error {
	var errs []error
	if err := c.Radius.Validate(); err != nil {
		errs = append(errs, err)
	}
	if !c.FirstLogin.Enabled {
		return errs
	}
	if d := c.FirstLogin.PassTTL.Duration; d < 10*time.Minute || d > 8*time.Hour {
		errs = append(errs, fmt.Errorf("first_login.pass_ttl: %s must be between 10m and 8h", c.FirstLogin.PassTTL))
	}
	if c.Web.Disabled {
		errs = append(errs, fmt.Errorf("first_login.enabled: the passes are redeemed at the web pages' /welcome, and web.disabled is true"))
	}
	return errs
}

// firstLogin is what the login surfaces need to hand out first-login
// passes; zero when they are off.
func (s *Server) firstLogin() httpapi.FirstLogin {
	if !s.cfg.FirstLogin.Enabled {
		return httpapi.FirstLogin{}
	}
	return httpapi.FirstLogin{PassTTL: s.cfg.FirstLogin.PassTTL.Duration, WelcomeURL: strings.TrimSuffix(s.cfg.Web.Origin, "/") + "/welcome"}
}

// buildRadius makes the RADIUS listener when it is enabled.
func (s *Server) buildRadius(reg prometheus.Registerer) error {
	if !s.cfg.Radius.Enabled {
		return nil
	}
	fl := s.firstLogin()
	oob := map[string]radius.OutOfBand{} // pushes, through core's verification
	for _, kind := range s.svc.OutOfBandKinds() {
		oob[kind] = radius.CoreOutOfBand{Service: s.svc}
	}
	r, err := radius.New(s.cfg.Radius, radius.Options{Service: s.svc, Logger: s.log.With("component", "radius"), Registry: reg,
		FirstLogin: radius.FirstLogin{PassTTL: fl.PassTTL, WelcomeURL: fl.WelcomeURL}, OutOfBand: oob,
		Challenges: s.radiusChallenges(), SharedPushes: s.pg != nil, Limits: s.sharedLimits(), Foreground: s.fg})
	if err != nil {
		return err
	}
	s.radius = r
	return nil
}

// startRadius binds the RADIUS listener's port and serves it until the
// returned stop is called, which waits for the requests being answered.
// Without a listener it does nothing.
func (s *Server) startRadius() (stop func(), err error) {
	if s.radius == nil {
		return func() {}, nil
	}
	conn, err := net.ListenPacket("udp", s.cfg.Radius.Listen)
	if err != nil {
		return nil, fmt.Errorf("radius.listen %s: %w (another RADIUS server there? pick another address)", s.cfg.Radius.Listen, err)
	}
	s.radiusAddr.Store(conn.LocalAddr().String())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := s.radius.Serve(ctx, conn); err != nil {
			s.log.Error("radius listener stopped", "err", err)
		}
	}()
	return func() { cancel(); <-done }, nil
}

// RadiusAddr is the address the RADIUS listener is bound to, once Serve
// started it ("" when it is off).
func (s *Server) RadiusAddr() string {
	a, _ := s.radiusAddr.Load().(string)
	return a
}
