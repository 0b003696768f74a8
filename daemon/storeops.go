package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/keyfleet/keyfleet/daemon/audit"
	"github.com/keyfleet/keyfleet/daemon/core"
	"github.com/keyfleet/keyfleet/daemon/store"
	"github.com/keyfleet/keyfleet/daemon/store/postgres"
)

// Store operations for keyfleetd's command line: migrate, backup,
// restore and new-epoch (docs/operations.md).

// MigrateSchema applies the PostgreSQL schema migrations keyfleetd
// carries and returns those it applied.
func MigrateSchema(ctx context.Context, cfg Config, log *slog.Logger) ([]postgres.Migration, error) {
	cfg.Defaults()
	if cfg.Store.Backend != BackendPostgres {
		return nil, errors.New("migrate is for store.backend postgres; a Badger store upgrades itself when keyfleetd opens it")
	}
	dsn, err := cfg.Store.Postgres.PostgresDSN()
	if err != nil {
		return nil, err
	}
	return postgres.Migrate(ctx, dsn, log)
}

func backupSocket(dir string) string { return filepath.Join(dir, "backup.sock") }

// Backup writes an online backup of the Badger store to w: through the
// running keyfleetd when there is one (its socket DIR/backup.sock), else
// from the store directly. It returns the audit head the backup holds at
// least.
func Backup(ctx context.Context, cfg Config, getenv func(string) string, w io.Writer) (uint64, error) {
	cfg.Defaults()
	if cfg.Store.Backend == BackendPostgres {
		return 0, errors.New("backup is for the Badger store; back PostgreSQL up with its own tools (pg_basebackup, pg_dump): docs/operations.md")
	}
	if conn, err := net.DialTimeout("unix", backupSocket(cfg.DataDir), 2*time.Second); err == nil {
		defer conn.Close()
		n, err := io.Copy(w, conn)
		if err != nil || n == 0 {
			return 0, fmt.Errorf("backup through the running keyfleetd failed (%d bytes): %v; see its log", n, err)
		}
		return 0, nil
	}
	key, err := loadKey(getenv, EnvStoreKey, storeKeyPath(cfg.DataDir))
	if err != nil {
		return 0, err
	}
	st, err := store.Open(store.Options{Dir: storeDir(cfg.DataDir), EncryptionKey: key})
	if err != nil {
		return 0, fmt.Errorf("%w (is keyfleetd running without its backup socket?)", err)
	}
	defer st.Close()
	return st.Backup(w)
}

// serveBackups answers backup requests on DIR/backup.sock (0600) while
// keyfleetd runs on Badger: each connection receives one backup.
func (s *Server) serveBackups(ctx context.Context) {
	path := backupSocket(s.cfg.DataDir)
	os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		s.log.Warn("no online backups: cannot listen on the backup socket", "path", path, "err", err)
		return
	}
	os.Chmod(path, 0o600)
	context.AfterFunc(ctx, func() { ln.Close() })
	defer os.Remove(path)
	for {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		head, err := s.badger.Backup(conn)
		conn.Close()
		if err != nil {
			s.log.Error("online backup failed", "err", err)
			continue
		}
		s.log.Info("online backup written", "audit_head", head)
	}
}

// Restore loads a Badger backup into DIR/store, which must not exist (move
// the old one aside first), and starts a new store epoch.
func Restore(cfg Config, getenv func(string) string, r io.Reader) (epoch string, head uint64, err error) {
	cfg.Defaults()
	if cfg.Store.Backend == BackendPostgres {
		return "", 0, errors.New("restore is for the Badger store; after restoring PostgreSQL, run 'keyfleetd new-epoch'")
	}
	dir := storeDir(cfg.DataDir)
	if _, err := os.Stat(dir); err == nil {
		return "", 0, fmt.Errorf("%s exists: stop keyfleetd and move it aside (mv %s %s.old) before restoring", dir, dir, dir)
	}
	key, err := loadKey(getenv, EnvStoreKey, storeKeyPath(cfg.DataDir))
	if err != nil {
		return "", 0, err
	}
	return store.Restore(store.Options{Dir: dir, EncryptionKey: key}, r)
}

// NewEpoch starts a new store epoch: after the store was restored by
// other means than 'keyfleetd restore' (a PostgreSQL backup).
func NewEpoch(ctx context.Context, cfg Config, getenv func(string) string) (string, error) {
	cfg.Defaults()
	key, err := loadKey(getenv, EnvStoreKey, storeKeyPath(cfg.DataDir))
	if err != nil {
		return "", err
	}
	if cfg.Store.Backend != BackendPostgres {
		st, err := store.Open(store.Options{Dir: storeDir(cfg.DataDir), EncryptionKey: key})
		if err != nil {
			return "", err
		}
		defer st.Close()
		return st.NewEpoch()
	}
	dsn, err := cfg.Store.Postgres.PostgresDSN()
	if err != nil {
		return "", err
	}
	st, err := postgres.Open(ctx, postgres.Options{DSN: dsn, StoreKey: key})
	if err != nil {
		return "", err
	}
	defer st.Close()
	return st.NewEpoch(ctx)
}

// CopyReport says what CopyStore copied.
type CopyReport struct {
	Records, Events int
	Head            uint64
	Hash            string
}

// CopyStore copies the Badger store in from (default DIR/store; keyfleetd
// must be stopped) into the empty PostgreSQL database at to, with the
// audit chain as it is, then verifies the copy's chain and head against
// the original.
func CopyStore(ctx context.Context, cfg Config, getenv func(string) string, from, to string) (CopyReport, error) {
	cfg.Defaults()
	if from == "" {
		from = storeDir(cfg.DataDir)
	}
	key, err := loadKey(getenv, EnvStoreKey, storeKeyPath(cfg.DataDir))
	if err != nil {
		return CopyReport{}, err
	}
	src, err := store.Open(store.Options{Dir: from, EncryptionKey: key})
	if err != nil {
		return CopyReport{}, fmt.Errorf("%w (stop keyfleetd first: the copy needs the store alone)", err)
	}
	defer src.Close()
	dst, err := postgres.Open(ctx, postgres.Options{DSN: to, StoreKey: key})
	if err != nil {
		return CopyReport{}, err
	}
	defer dst.Close()
	var rep CopyReport
	if rep.Records, rep.Events, err = dst.Import(ctx, src); err != nil {
		return rep, err
	}
	if err := copySealCheck(ctx, src, dst); err != nil {
		return rep, err
	}
	v, err := core.VerifyStore(ctx, dst)
	if err != nil {
		return rep, err
	}
	want := src.AuditHead()
	if v.Break != nil || v.Head != want {
		return rep, fmt.Errorf("the copy does not verify (head %d, break %v); the original's head is %d: drop the database and copy again", v.Head.Seq, v.Break, want.Seq)
	}
	rep.Head, rep.Hash = want.Seq, audit.HexHash(want.Hash)
	return rep, nil
}

// copySealCheck gives the database the Badger store's sealing key check
// value, so that a keyfleetd on the copy with another sealing key is
// refused at start as it was on the original.
func copySealCheck(ctx context.Context, src *store.Store, dst *postgres.Store) error {
	v, ok, err := src.SealCheck()
	if err != nil || !ok {
		return err
	}
	if err := dst.PutSealCheck(ctx, v); err != nil {
		return fmt.Errorf("copying the sealing key's check value: %w", err)
	}
	return nil
}
