package postgres

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Values keyfleetd keeps beside the records in the meta table, written
// once by the first keyfleetd (init --postgres, or the first start of a
// database made before them) and checked by every start after.
const (
	// metaSealCheck is the sealing key's check value (daemon/seal),
	// sealed under the sealing key itself.
	metaSealCheck = "seal_check"
	// metaCheckpointKey is the public key audit checkpoints are signed
	// with, so that a keyfleetd holding another checkpoint key is refused
	// before it signs checkpoints the others cannot verify.
	metaCheckpointKey = "checkpoint_public_key"
)

// SealCheck reads the sealing key's check value; ok is false when the
// database has none yet.
func (s *Store) SealCheck(ctx context.Context) (v []byte, ok bool, err error) {
	return s.metaBytes(ctx, metaSealCheck)
}

// PutSealCheck records the sealing key's check value unless the database
// has one already (another keyfleetd starting at the same moment wrote
// it first): read it back with SealCheck and check that one.
func (s *Store) PutSealCheck(ctx context.Context, v []byte) error {
	return s.putMetaOnce(ctx, metaSealCheck, v)
}

// CheckpointKey reads the public key audit checkpoints are signed with;
// ok is false when the database has none yet.
func (s *Store) CheckpointKey(ctx context.Context) (pub []byte, ok bool, err error) {
	return s.metaBytes(ctx, metaCheckpointKey)
}

// PutCheckpointKey records the checkpoint signing key's public half unless
// the database has one already: read it back with CheckpointKey.
func (s *Store) PutCheckpointKey(ctx context.Context, pub []byte) error {
	return s.putMetaOnce(ctx, metaCheckpointKey, pub)
}

// metaBytes reads a hex value of the meta table.
func (s *Store) metaBytes(ctx context.Context, k string) ([]byte, bool, error) {
	var v string
	err := s.pool.QueryRow(ctx, "SELECT v FROM meta WHERE k = $1", k).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("postgres store: reading %s: %w", k, mapErr(err))
	}
	b, err := hex.DecodeString(v)
	if err != nil {
		return nil, false, fmt.Errorf("postgres store: the meta table's %s is not hex, so it was changed outside keyfleetd: restore that row from a backup of the database, then start keyfleetd again", k)
	}
	return b, true, nil
}

// putMetaOnce writes a hex value to the meta table, keeping one already
// there.
func (s *Store) putMetaOnce(ctx context.Context, k string, v []byte) error {
	_, err := s.pool.Exec(ctx, "INSERT INTO meta (k, v) VALUES ($1, $2) ON CONFLICT (k) DO NOTHING", k, hex.EncodeToString(v))
	if err != nil {
		return fmt.Errorf("postgres store: recording %s: %w", k, mapErr(err))
	}
	return nil
}
