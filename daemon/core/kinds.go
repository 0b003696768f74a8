package core

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/keyfleet/keyfleet/plugins/sdk"
)

// kind is a registered factor kind and what it said about itself.
type kind struct {
	sdk.Factor
	info sdk.Info
}

var kindNameRE = regexp.MustCompile(`^[a-z0-9_-]{1,32}$`)

// describeTimeout bounds a kind's Describe at start-up.
const describeTimeout = 10 * time.Second

func (s *Service) addKind(f sdk.Factor) error {
	ctx, cancel := context.WithTimeout(context.Background(), describeTimeout)
	defer cancel()
	info, err := f.Describe(ctx)
	if err != nil {
		return fmt.Errorf("core: describing a factor kind: %w", err)
	}
	if !kindNameRE.MatchString(info.Kind) {
		return fmt.Errorf("core: factor kind name %q must be 1-32 of a-z 0-9 _ -", info.Kind)
	}
	if _, dup := s.kinds[info.Kind]; dup {
		return fmt.Errorf("core: factor kind %q registered twice", info.Kind)
	}
	s.kinds[info.Kind] = kind{Factor: f, info: info}
	return nil
}

// KindInfo describes a registered kind.
func (s *Service) KindInfo(name string) (sdk.Info, bool) {
	k, ok := s.kinds[name]
	return k.info, ok
}

func sdkUser(u User) sdk.User {
	return sdk.User{ID: u.ID, Username: u.Username, DisplayName: u.DisplayName, Groups: u.Groups, Roles: u.Roles}
}

// kindError turns a kind's error into the domain's: a bad request from the
// caller is ErrInvalid (shown), anything else stays an internal error.
func kindError(kind string, err error) error {
	switch {
	case errors.Is(err, sdk.ErrInvalidRequest):
		return fmt.Errorf("%w: %s: %v", ErrInvalid, kind, err)
	case errors.Is(err, sdk.ErrUnsupported):
		return fmt.Errorf("%w: %s: %v", ErrUnsupportedKind, kind, err)
	case errors.Is(err, sdk.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%w: the %s factor kind did not answer in time; try again", ErrUnavailable, kind)
	}
	return fmt.Errorf("factor kind %s: %w", kind, err)
}

// jsonOrNil returns b as raw JSON, or nil when empty.
func jsonOrNil(b []byte) json.RawMessage {
	if len(b) == 0 {
		return nil
	}
	return json.RawMessage(b)
}
