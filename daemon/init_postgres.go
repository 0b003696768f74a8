package daemon

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/keyfleet/keyfleet/daemon/seal"
	"github.com/keyfleet/keyfleet/daemon/store"
	"github.com/keyfleet/keyfleet/daemon/store/postgres"
)

func postgresDSNPath(dir string) string { return filepath.Join(dir, "keys", "postgres.dsn") }

// openInitStore opens the store init bootstraps: DIR/store, or the
// PostgreSQL database (migrated first), whose DSN it writes to
// DIR/keys/postgres.dsn.
func openInitStore(ctx context.Context, o InitOptions, storeKey []byte) (backend, error) {
	if o.PostgresDSN == "" {
		// A few records: the smallest memtable, and no reserve, so that
		// init runs on a small disk that serve is configured for.
		return store.Open(store.Options{Dir: storeDir(o.Dir), EncryptionKey: storeKey, MemTableSize: 1 << 20, Reserve: 1})
	}
	if err := os.WriteFile(postgresDSNPath(o.Dir), []byte(o.PostgresDSN+"\n"), 0o600); err != nil {
		return nil, err
	}
	return postgres.Open(ctx, postgres.Options{DSN: o.PostgresDSN, StoreKey: storeKey})
}

// initChecks records what later starts check (initFaultChecks): in the
// Badger store, or in the PostgreSQL database, where every keyfleetd that
// shares it checks its sealing key against the same value.
func initChecks(ctx context.Context, dir string, st backend, sl *seal.Sealer) error {
	switch st := st.(type) {
	case *store.Store:
		return initFaultChecks(ctx, dir, badgerChecks{st}, sl)
	case *postgres.Store:
		if err := recordSealCheck(ctx, st, sl); err != nil {
			return fmt.Errorf("recording the sealing key's check value in the database: %w", err)
		}
	}
	return nil
}

// postgresConfig turns the default configuration file into one for the
// PostgreSQL backend init was given.
func postgresConfig(text string, o InitOptions) string {
	if o.PostgresDSN == "" {
		return text
	}
	text = strings.Replace(text, "  backend: badger ", "  backend: postgres", 1)
	return strings.Replace(text, "    dsn_file: \"\" ", "    dsn_file: "+strconv.Quote(postgresDSNPath(o.Dir)), 1)
}
