package store

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/keyfleet/keyfleet/daemon/core"
	"github.com/keyfleet/keyfleet/daemon/events"
)

// Export hands every record of the store to fn, typed (core.User, …,
// FirstApplied, SinkCursor, events.DeadLetter), for copying the store to
// another backend (keyfleetd migrate-store). Derived records (indexes, the
// policy facts but the first-applied times, the policy head) are left out: the importer rebuilds them
// from these. Begun verifications are left out too: they last minutes.
// The audit chain is read with AuditScan.
func (s *Store) Export(fn func(v any) error) error {
	return s.db.View(func(txn *badger.Txn) error {
		for _, p := range exportPrefixes {
			err := scanPrefix(txn, []byte(p.prefix), true, func(item *badger.Item) error {
				return item.Value(func(b []byte) error {
					v, err := p.decode(item.Key()[len(p.prefix):], b)
					if err != nil {
						return fmt.Errorf("exporting %q: %w", item.Key(), err)
					}
					if v == nil { // not a record
						return nil
					}
					return fn(v)
				})
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
}

// FirstApplied is an exported user's first-applied times.
type FirstApplied struct {
	UserID string
	Times  map[string]time.Time
}

// SinkCursor is an exported event sink cursor.
type SinkCursor struct {
	Sink string
	Seq  uint64
}

func decodeAs[T any](_ []byte, b []byte) (any, error) {
	var v T
	err := json.Unmarshal(b, &v)
	return v, err
}

var exportPrefixes = []struct {
	prefix string
	decode func(k, v []byte) (any, error)
}{
	{pUser, decodeAs[core.User]}, {pDevice, decodeAs[core.Device]}, {pFactor, decodeAs[core.Factor]},
	{pEnrolment, decodeAs[core.Enrolment]}, {pToken, decodeAs[core.Token]}, {pApproval, decodeAs[core.Approval]},
	{pRecCodes, decodeAs[core.RecoveryCodes]}, {pRecCase, decodeAs[core.RecoveryCase]}, {pPass, decodeAs[core.AccessPass]},
	{kBreakGlass, func(k, v []byte) (any, error) {
		if len(k) != 0 {
			return nil, errors.New("unexpected key")
		}
		return decodeAs[core.BreakGlass](k, v)
	}},
	{pPolicyVersion, decodeAs[core.PolicyVersion]}, {pPolicyDraft, decodeAs[core.PolicyDraft]},
	{pPolicyFacts, func(k, v []byte) (any, error) { // of the policy facts, only the first-applied times are a record
		userID, rest, _ := strings.Cut(string(k), "\x00")
		if rest != string(tagFirstApplied) {
			return nil, nil
		}
		m, err := decodeFirstApplied(v)
		return FirstApplied{UserID: userID, Times: m}, err
	}},
	{pExemption, decodeAs[core.Exemption]},
	{pSinkCursor, func(k, v []byte) (any, error) {
		if len(v) < 8 {
			return nil, errors.New("damaged cursor")
		}
		return SinkCursor{Sink: string(k), Seq: binary.BigEndian.Uint64(v)}, nil
	}},
	{pDeadLetter, decodeAs[events.DeadLetter]},
	{pDirState, decodeAs[core.DirectoryState]}, {pDirGroup, decodeAs[core.DirectoryGroup]},
}
