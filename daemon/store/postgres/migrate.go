package postgres

import (
	"context"
	"crypto/rand"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"regexp"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/keyfleet/keyfleet/daemon/core"
)

// The schema is versioned with goose: migrations/NNNNN_*.sql, embedded
// in keyfleetd and applied in order, each in a transaction, under a
// PostgreSQL advisory lock so that several keyfleetd starting at once
// apply each migration once. goose records what it applied in the table
// keyfleet_schema.

//go:embed migrations/*.sql
var migrations embed.FS

// migrationLockID is the advisory lock goose holds while migrating.
const migrationLockID = 0x6b66_6d69_6772 // "kfmigr"

// ErrSchemaBehind: the database's schema is older than this keyfleetd
// and it was told not to migrate.
var ErrSchemaBehind = errors.New("the database schema is behind this keyfleetd: run 'keyfleetd migrate'")

// ErrSchemaAhead: the database was migrated by a newer keyfleetd.
var ErrSchemaAhead = errors.New("the database schema is newer than this keyfleetd: upgrade keyfleetd")

func provider(pool *pgxpool.Pool, log *slog.Logger) (*goose.Provider, func() error, error) {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return nil, nil, err
	}
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockID(migrationLockID), lock.WithLockTimeout(1, 300))
	if err != nil {
		return nil, nil, err
	}
	db := stdlib.OpenDBFromPool(pool)
	p, err := goose.NewProvider(goose.DialectPostgres, db, sub,
		goose.WithTableName("keyfleet_schema"), goose.WithSessionLocker(locker),
		goose.WithDisableGlobalRegistry(true), goose.WithSlog(log.With("component", "migrate")))
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	return p, db.Close, nil
}

// Migration is one applied or pending schema version.
type Migration struct {
	Version int64
	Name    string
	Applied bool
}

// Migrate applies every pending migration and returns what it applied.
func Migrate(ctx context.Context, dsn string, log *slog.Logger) ([]Migration, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres store: %w", redact(err))
	}
	defer pool.Close()
	return migrate(ctx, pool, log)
}

func migrate(ctx context.Context, pool *pgxpool.Pool, log *slog.Logger) ([]Migration, error) {
	p, closeDB, err := provider(pool, log)
	if err != nil {
		return nil, err
	}
	defer closeDB()
	res, err := p.Up(ctx)
	if err != nil {
		return nil, fmt.Errorf("migrating the database schema: %w", redact(err))
	}
	out := make([]Migration, 0, len(res))
	for _, r := range res {
		out = append(out, Migration{Version: r.Source.Version, Name: r.Source.Path, Applied: true})
	}
	return out, nil
}

// checkSchema brings the schema up to date (apply), or checks that it
// is.
func checkSchema(ctx context.Context, pool *pgxpool.Pool, apply bool, log *slog.Logger) error {
	if apply {
		applied, err := migrate(ctx, pool, log)
		for _, m := range applied {
			log.Info("database schema migrated", "version", m.Version, "migration", m.Name)
		}
		return err
	}
	p, closeDB, err := provider(pool, log)
	if err != nil {
		return err
	}
	defer closeDB()
	current, target, err := p.GetVersions(ctx)
	if err != nil {
		return fmt.Errorf("reading the database schema version: %w", redact(err))
	}
	switch {
	case current < target:
		return fmt.Errorf("%w (database at version %d, keyfleetd needs %d)", ErrSchemaBehind, current, target)
	case current > target:
		return fmt.Errorf("%w (database at version %d, keyfleetd knows up to %d)", ErrSchemaAhead, current, target)
	}
	return nil
}

// keyCheck is sealed under the store key when the database is first
// used; a keyfleetd with another key is refused at open rather than
// writing records nobody else can read.
const keyCheck = "keyfleet store key check v1"

func (s *Store) checkKey(ctx context.Context) error {
	var v string
	err := s.pool.QueryRow(ctx, "SELECT v FROM meta WHERE k = 'key_check'").Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		sealed := hex.EncodeToString(s.box.seal("meta", "key_check", []byte(keyCheck)))
		_, err = s.pool.Exec(ctx, "INSERT INTO meta (k, v) VALUES ('key_check', $1) ON CONFLICT (k) DO NOTHING", sealed)
		if err != nil {
			return fmt.Errorf("postgres store: %w", err)
		}
		return s.checkKey(ctx)
	}
	if err != nil {
		return fmt.Errorf("postgres store: reading the key check: %w", err)
	}
	b, err := hex.DecodeString(v)
	if err == nil {
		_, err = s.box.open("meta", "key_check", b)
	}
	if err != nil {
		return fmt.Errorf("%w: postgres store: this database's records were sealed under another store key; give keyfleetd the store key it was set up with (keys/store.key or KEYFLEET_STORE_KEY)", core.ErrUnavailable)
	}
	return nil
}

func newEpochID() string {
	b := make([]byte, 6)
	rand.Read(b)
	return hex.EncodeToString(b)
}

var secretInDSN = regexp.MustCompile(`(?i)(password=)\S+|(://[^:/@\s]+:)[^@\s]+@`)

// redactString hides a password in a connection string.
func redactString(s string) string {
	return secretInDSN.ReplaceAllStringFunc(s, func(m string) string {
		if len(m) > 9 && (m[:9] == "password=" || m[:9] == "PASSWORD=") {
			return m[:9] + "REDACTED"
		}
		i := regexp.MustCompile(`://[^:/@\s]+:`).FindStringIndex(m)
		if i == nil {
			return m
		}
		return m[:i[1]] + "REDACTED@"
	})
}
