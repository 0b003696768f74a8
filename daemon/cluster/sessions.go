package cluster

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keyfleet/keyfleet/daemon/web"
)

// Sealer seals what this package keeps, as the store seals its records.
// *postgres.Store implements it.
type Sealer interface {
	Seal(table, key string, plain []byte) []byte
	Open(table, key string, sealed []byte) ([]byte, error)
	// Index is a keyed hash of parts, for look-ups by a value that must
	// not be stored in the clear.
	Index(kind string, parts ...string) []byte
}

// Sessions is a web.SessionStore in the database (table web_sessions):
// filed by the SHA-256 of the cookie (never the cookie), the session
// sealed. A database that does not answer loses no session: Load
// reports none (the browser signs in again) and Save returns the error.
type Sessions struct {
	Pool    *pgxpool.Pool
	Sealer  Sealer
	Logger  *slog.Logger
	Timeout time.Duration // per statement (default 2s)
}

var _ web.SessionStore = (*Sessions)(nil)

func (s *Sessions) ctx() (context.Context, context.CancelFunc) {
	d := s.Timeout
	if d <= 0 {
		d = 2 * time.Second
	}
	return context.WithTimeout(context.Background(), d)
}

func (s *Sessions) warn(what string, err error) {
	if s.Logger != nil {
		s.Logger.Warn(what, "err", err)
	}
}

func sessionName(key web.SessionKey) string { return hex.EncodeToString(key[:]) }

// Load returns the session filed under key, unless it has expired.
func (s *Sessions) Load(key web.SessionKey, now time.Time) (web.Session, bool) {
	ctx, cancel := s.ctx()
	defer cancel()
	var sealed []byte
	err := s.Pool.QueryRow(ctx, "SELECT rec FROM web_sessions WHERE k = $1 AND expires > $2", key[:], now).Scan(&sealed)
	if err != nil {
		if !errors.Is(err, pgx.ErrNoRows) {
			s.warn("reading a web session", err)
		}
		return web.Session{}, false
	}
	plain, err := s.Sealer.Open("web_sessions", sessionName(key), sealed)
	if err != nil {
		s.warn("opening a web session", err)
		return web.Session{}, false
	}
	var sess web.Session
	if err := json.Unmarshal(plain, &sess); err != nil {
		s.warn("decoding a web session", err)
		return web.Session{}, false
	}
	return sess, true
}

// Save files sess under key until it expires.
func (s *Sessions) Save(key web.SessionKey, sess web.Session) error {
	b, err := json.Marshal(sess)
	if err != nil {
		return err
	}
	ctx, cancel := s.ctx()
	defer cancel()
	_, err = s.Pool.Exec(ctx, `INSERT INTO web_sessions (k, expires, rec) VALUES ($1, $2, $3)
		ON CONFLICT (k) DO UPDATE SET expires = EXCLUDED.expires, rec = EXCLUDED.rec`,
		key[:], sess.Expires, s.Sealer.Seal("web_sessions", sessionName(key), b))
	if err != nil {
		return fmt.Errorf("saving the web session: %w", err)
	}
	return nil
}

// Delete forgets a session.
func (s *Sessions) Delete(key web.SessionKey) {
	ctx, cancel := s.ctx()
	defer cancel()
	if _, err := s.Pool.Exec(ctx, "DELETE FROM web_sessions WHERE k = $1", key[:]); err != nil {
		s.warn("deleting a web session", err)
	}
}
