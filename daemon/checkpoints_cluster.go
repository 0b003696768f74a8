package daemon

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"

	"github.com/keyfleet/keyfleet/daemon/checkpoint"
	"github.com/keyfleet/keyfleet/daemon/seal"
)

// Audit checkpoints with several keyfleetd on one PostgreSQL database:
// every keyfleetd signs with the same key (made by init --postgres, in
// DIR/keys/checkpoint.key, which the other keyfleetd get with their copy
// of DIR), whose public half the database keeps so that a keyfleetd with
// another key is refused before it signs checkpoints the others cannot
// verify; the leader alone writes them, and each keyfleetd compares the
// store with the newest it finds at start (openAnchor).

// checkpointKeys is where the database keeps the checkpoint key's public
// half (*postgres.Store).
type checkpointKeys interface {
	CheckpointKey(ctx context.Context) (pub []byte, ok bool, err error)
	// PutCheckpointKey keeps a value another keyfleetd wrote first.
	PutCheckpointKey(ctx context.Context, pub []byte) error
}

// errCheckpointKey: this keyfleetd's checkpoint key is missing or is not
// the one the database's keyfleetd share.
var errCheckpointKey = errors.New("this keyfleetd's audit checkpoint key is not the one the keyfleetd on this PostgreSQL database share")

// sharedCheckpointKey makes sure dir's checkpoint key is the database's:
// it refuses a missing key file when the database has a key, and a key
// file with another key; a database without one (made before) gets this
// keyfleetd's. It returns an error wrapping errCheckpointKey then.
func sharedCheckpointKey(ctx context.Context, dir string, db checkpointKeys, sl *seal.Sealer) error {
	pub, ok, err := db.CheckpointKey(ctx)
	if err != nil {
		return fmt.Errorf("reading the audit checkpoint key's public half from the database: %w", err)
	}
	path := checkpointKeyPath(dir)
	if _, err := os.Stat(path); ok && errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%w: %s is missing. %s", errCheckpointKey, path, copyCheckpointKey(path))
	}
	signer, err := checkpoint.LoadSigner(path, sl, rand.Reader)
	if err != nil {
		return err
	}
	if !ok {
		if err := db.PutCheckpointKey(ctx, signer.Public()); err != nil {
			return err
		}
		if pub, ok, err = db.CheckpointKey(ctx); err != nil {
			return fmt.Errorf("reading back the audit checkpoint key's public half: %w", err)
		} else if !ok {
			return errors.New("the audit checkpoint key's public half was not found in the database right after it was written: check that store.postgres.dsn names the database the other keyfleetd use and that its user may write the meta table, then start keyfleetd again")
		}
	}
	if !bytes.Equal(pub, signer.Public()) {
		return fmt.Errorf("%w: %s signs checkpoints the others cannot verify (and each would refuse the others' at start). %s", errCheckpointKey, path, copyCheckpointKey(path))
	}
	return nil
}

func copyCheckpointKey(path string) string {
	return fmt.Sprintf("Copy keys/checkpoint.key from the data folder 'keyfleetd init --postgres' made (or from another keyfleetd on this database) to %s, then start keyfleetd", path)
}

// leadCheckpoints writes the audit checkpoints while this keyfleetd leads
// (PostgreSQL), continuing from the newest checkpoint the places hold: the
// previous leader's, when they share a witness or a file.
func (s *Server) leadCheckpoints(ctx context.Context) {
	a := s.anchor
	if c, ok, _, _ := checkpoint.Newest(ctx, a.signer.Public(), a.sources()...); ok {
		if l, found := a.mgr.Latest(); !found || c.Seq > l.Seq || (c.Seq == l.Seq && c.Time.After(l.Time)) {
			a.mgr.Start(c)
		}
	}
	s.log.Info("writing the audit checkpoints as the leader", "file", a.file.Path)
	a.mgr.Run(ctx)
}
