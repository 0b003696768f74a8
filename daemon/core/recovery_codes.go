package core

import (
	"context"
	"crypto/subtle"
	"fmt"
	"io"
	"runtime"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/argon2"

	"github.com/keyfleet/keyfleet/daemon/proof"
)

// Recovery codes: ten per set, 50 random bits each, written as two groups
// of five lower-case Crockford base32 characters ("7k2qp-x9m4d").
const (
	recoveryCodeCount = 10
	recoveryCodeBytes = 7 // 56 bits drawn, 50 used
)

// argon2id parameters for recovery codes (RFC 9106 §4, the memory-
// constrained choice): slow enough that a stolen store does not give the
// codes away, fast enough that a check takes tens of milliseconds.
const (
	argonTime    = 2
	argonMemory  = 19 * 1024 // KiB
	argonThreads = 1
	argonKeyLen  = 32
)

func hashRecoveryCode(code string, salt []byte) []byte {
	return argon2.IDKey([]byte(normalizeCode(code)), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
}

// normalizeCode forgives what people do when they type a code: case,
// spaces, dashes, and the letters Crockford base32 leaves out.
func normalizeCode(code string) string {
	r := strings.NewReplacer("-", "", " ", "", "i", "1", "l", "1", "o", "0", "u", "v")
	return r.Replace(strings.ToLower(strings.TrimSpace(code)))
}

// newRecoveryCodes makes a set for a user and returns it with the codes in
// the clear, to be shown once.
func (s *Service) newRecoveryCodes(userID string) (RecoveryCodes, []string, error) {
	rc := RecoveryCodes{UserID: userID, Salt: make([]byte, 16), CreatedAt: s.now()}
	if _, err := io.ReadFull(s.cfg.Rand, rc.Salt); err != nil {
		return RecoveryCodes{}, nil, err
	}
	codes := make([]string, recoveryCodeCount)
	raws := make([]string, recoveryCodeCount)
	for i := range codes {
		b := make([]byte, recoveryCodeBytes)
		if _, err := io.ReadFull(s.cfg.Rand, b); err != nil {
			return RecoveryCodes{}, nil, err
		}
		raws[i] = idEncoding.EncodeToString(b)[:10]
		codes[i] = raws[i][:5] + "-" + raws[i][5:]
	}
	// Ten slow hashes: spread them over the cores.
	rc.Codes = make([]RecoveryCode, recoveryCodeCount)
	var wg sync.WaitGroup
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	for i, raw := range raws {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			rc.Codes[i] = RecoveryCode{Hash: hashRecoveryCode(raw, rc.Salt)}
		}()
	}
	wg.Wait()
	return rc, codes, nil
}

// useRecoveryCode marks the code used if it is one of rc's unused codes.
func useRecoveryCode(rc *RecoveryCodes, code string, now time.Time) bool {
	h := hashRecoveryCode(code, rc.Salt)
	found := -1
	for i, c := range rc.Codes {
		// Compare with every code, used or not, so timing says nothing.
		if subtle.ConstantTimeCompare(c.Hash, h) == 1 && c.UsedAt == nil {
			found = i
		}
	}
	if found < 0 {
		return false
	}
	rc.Codes[found].UsedAt = &now
	return true
}

// RegenerateRecoveryCodes replaces a user's recovery codes with a new set
// and returns the codes, once. Users do this for themselves.
func (s *Service) RegenerateRecoveryCodes(ctx context.Context, p Principal, ref string) ([]string, error) {
	if ref == "" {
		ref = p.UserID
	}
	var codes []string
	var rc RecoveryCodes
	// A pass's holder makes their first codes with the pass; anyone else
	// proves it with their own factor.
	var receipt proofReceipt
	if p.PassID == "" {
		var err error
		if receipt, err = s.prove(ctx, p, proof.Binding{Action: proof.RecoveryCodesRegen, Subject: p.UserID}); err != nil {
			return nil, err
		}
	}
	err := s.store.View(ctx, func(tx ReadTx) error {
		u, err := lookupUser(tx, ref)
		if err != nil {
			return err
		}
		if u.ID != p.UserID {
			return &ForbiddenError{Principal: p.Username, Action: "recovery_codes.regenerate", Reason: "users regenerate their own recovery codes"}
		}
		rc, codes, err = s.newRecoveryCodes(u.ID)
		return err
	})
	if err != nil {
		return nil, err
	}
	err = s.store.Update(ctx, func(tx Tx) error {
		u, err := tx.User(rc.UserID)
		if err != nil {
			return err
		}
		if err := tx.PutRecoveryCodes(rc); err != nil {
			return err
		}
		ev := s.eventCtx(ctx, p, "")
		receipt.note(ev)
		return ev.audit(tx, "recovery_codes.regenerate", userTarget(u), nil, map[string]any{"codes": len(rc.Codes)})
	})
	return codes, err
}

// RecoveryCodesRemaining counts a user's unused recovery codes (0 when
// they have none).
func (s *Service) RecoveryCodesRemaining(ctx context.Context, userID string) (int, error) {
	n := 0
	err := s.store.View(ctx, func(tx ReadTx) error {
		rc, err := tx.RecoveryCodes(userID)
		if isNotFound(err) {
			return nil
		}
		n = rc.Remaining()
		return err
	})
	return n, err
}

// firstRecoveryCodes makes a user's first set when they enrol their first
// factor; nil when they already have one.
func (s *Service) firstRecoveryCodes(ctx context.Context, userID string) (*RecoveryCodes, []string, error) {
	exists := false
	err := s.store.View(ctx, func(tx ReadTx) error {
		_, err := tx.RecoveryCodes(userID)
		exists = err == nil
		if isNotFound(err) {
			return nil
		}
		return err
	})
	if err != nil || exists {
		return nil, nil, err
	}
	rc, codes, err := s.newRecoveryCodes(userID)
	if err != nil {
		return nil, nil, fmt.Errorf("making recovery codes: %w", err)
	}
	return &rc, codes, nil
}
