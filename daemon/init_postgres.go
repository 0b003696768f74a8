package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/keyfleet/keyfleet/daemon/core"
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
// shares it checks its sealing key and its checkpoint key against the
// same values. A database that has them already holds a store.
func initChecks(ctx context.Context, dir string, st backend, sl *seal.Sealer) error {
	pg, ok := st.(*postgres.Store)
	if !ok {
		return initFaultChecks(ctx, dir, badgerChecks{st.(*store.Store)}, sl)
	}
	if err := pg.View(ctx, func(tx core.ReadTx) error {
		us, _, err := tx.Users(core.UserFilter{}, core.PageReq{Limit: 1})
		if err == nil && len(us) > 0 {
			err = errors.New("the PostgreSQL database already holds a keyfleet store: to add a keyfleetd to it, copy the data folder of the keyfleetd that 'keyfleetd init --postgres' set up; to start afresh, give an empty database")
		}
		return err
	}); err != nil {
		return err
	}
	if err := recordSealCheck(ctx, pg, sl); err != nil {
		return fmt.Errorf("recording the sealing key's check value in the database: %w (an earlier 'keyfleetd init --postgres' on it that did not finish? give an empty database)", err)
	}
	return sharedCheckpointKey(ctx, dir, pg, sl)
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
