package daemon

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/audit"
	"github.com/keyfleet/keyfleet/daemon/checkpoint"
	"github.com/keyfleet/keyfleet/daemon/core"
	"github.com/keyfleet/keyfleet/daemon/seal"
	"github.com/keyfleet/keyfleet/daemon/store"
)

// Faults keyfleetd treats as states (docs/operations.md): a full disk (the
// store's reserve), a damaged store (refused at open), a wrong sealing key
// (refused against the store's check value), and an audit log behind its
// newest signed checkpoint (refused, or served with a loud warning).

// StoreSpace are the store's disk-space settings.
type StoreSpace struct {
	// ReserveMB is the free space, in MiB, below which the store refuses
	// writes (0: automatic, store.DefaultReserve: 8 memtables and a fifth
	// of the store).
	ReserveMB int64 `yaml:"reserve_mb"`
	// MemTableMB is Badger's memtable size in MiB (default: an eighth
	// of store.memory, 32 MiB at its default).
	MemTableMB int64 `yaml:"memtable_mb"`
	// SpaceCheck is how often free space is measured besides at every
	// sync (default 1s): how soon writes resume once space returns.
	SpaceCheck Duration `yaml:"space_check"`
}

func (c *StoreSpace) defaults() {
	if c.MemTableMB == 0 {
		c.MemTableMB = 32 // store.memory sizes it first (memory.go)
	}
	if c.SpaceCheck.Duration == 0 {
		c.SpaceCheck.Duration = time.Second
	}
}

func (c *StoreSpace) validate() []error {
	var errs []error
	if c.ReserveMB < 0 {
		errs = append(errs, fmt.Errorf("store.reserve_mb: %d cannot be negative (0 sizes it automatically)", c.ReserveMB))
	}
	if c.MemTableMB < 1 || c.MemTableMB > 1024 {
		errs = append(errs, fmt.Errorf("store.memtable_mb: %d must be between 1 and 1024", c.MemTableMB))
	}
	if d := c.SpaceCheck.Duration; d < 10*time.Millisecond || d > time.Minute {
		errs = append(errs, fmt.Errorf("store.space_check: %s must be between 10ms and 1m", c.SpaceCheck))
	}
	return errs
}

// AuditConfig configures the signed audit checkpoints.
type AuditConfig struct {
	Checkpoint struct {
		// Every and Interval: a checkpoint at least every so many events
		// (default 1000) and every so long while events come (default 1m).
		Every    uint64   `yaml:"every"`
		Interval Duration `yaml:"interval"`
		// File keeps the newest checkpoint, outside the data folder
		// (default: beside it, DATA.checkpoint).
		File string `yaml:"file"`
		// WitnessURL, if set, is an HTTPS witness that keeps checkpoints
		// (docs/operations.md gives its two requests).
		WitnessURL string `yaml:"witness_url"`
		// OnMismatch is what keyfleetd does when the store is behind or
		// disagrees with the newest checkpoint: refuse (default) to start,
		// or warn and serve.
		OnMismatch string `yaml:"on_mismatch"`
	} `yaml:"checkpoint"`
}

func (c *AuditConfig) defaults(dataDir string) {
	cp := &c.Checkpoint
	if cp.Every == 0 {
		cp.Every = 1000
	}
	if cp.Interval.Duration == 0 {
		cp.Interval.Duration = time.Minute
	}
	if cp.File == "" && dataDir != "" {
		cp.File = defaultCheckpointFile(dataDir)
	}
	if cp.OnMismatch == "" {
		cp.OnMismatch = "refuse"
	}
}

func (c *AuditConfig) validate(dataDir string) []error {
	var errs []error
	cp := c.Checkpoint
	if cp.Interval.Duration < time.Second || cp.Interval.Duration > 24*time.Hour {
		errs = append(errs, fmt.Errorf("audit.checkpoint.interval: %s must be between 1s and 24h", cp.Interval))
	}
	if cp.OnMismatch != "refuse" && cp.OnMismatch != "warn" {
		errs = append(errs, fmt.Errorf("audit.checkpoint.on_mismatch: %q must be refuse or warn", cp.OnMismatch))
	}
	if inside(dataDir, cp.File) {
		errs = append(errs, fmt.Errorf("audit.checkpoint.file: %s is inside the data folder %s; put it outside (ideally on another disk), where a copy of the data folder put back does not reach it", cp.File, dataDir))
	}
	if cp.WitnessURL != "" {
		if u, err := url.Parse(cp.WitnessURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			errs = append(errs, fmt.Errorf("audit.checkpoint.witness_url: %q is not an https:// URL", cp.WitnessURL))
		}
	}
	return errs
}

// defaultCheckpointFile is beside the data folder: DATA.checkpoint.
func defaultCheckpointFile(dataDir string) string { return filepath.Clean(dataDir) + ".checkpoint" }

// inside reports whether path lies in dir.
func inside(dir, path string) bool {
	if dir == "" || path == "" {
		return false
	}
	d, err1 := filepath.Abs(dir)
	p, err2 := filepath.Abs(path)
	if err1 != nil || err2 != nil {
		return false
	}
	rel, err := filepath.Rel(d, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

func checkpointKeyPath(dir string) string { return filepath.Join(dir, "keys", "checkpoint.key") }

// storeOptions are the store's options from the configuration.
func storeOptions(cfg Config, key []byte, log *slog.Logger, afterAudit func([]*audit.Event)) store.Options {
	return store.Options{
		Dir: storeDir(cfg.DataDir), EncryptionKey: key, Logger: log, AfterAudit: afterAudit,
		KeyRotation:  cfg.Store.KeyRotation.Duration,
		BlockCacheMB: cfg.Store.BlockCacheMB, IndexCacheMB: cfg.Store.IndexCacheMB,
		MemTableSize: cfg.Store.MemTableMB << 20, Reserve: cfg.Store.ReserveMB << 20,
		SpaceCheckEvery: cfg.Store.SpaceCheck.Duration,
	}
}

// sealChecks is where a store keeps the sealing key's check value: a key
// in Badger, the meta table in PostgreSQL.
type sealChecks interface {
	SealCheck(ctx context.Context) (v []byte, ok bool, err error)
	// PutSealCheck records v; PostgreSQL keeps a value another keyfleetd
	// wrote first, so the value is read back before it counts.
	PutSealCheck(ctx context.Context, v []byte) error
}

// badgerChecks is the Badger store as sealChecks.
type badgerChecks struct{ st *store.Store }

func (b badgerChecks) SealCheck(context.Context) ([]byte, bool, error) { return b.st.SealCheck() }
func (b badgerChecks) PutSealCheck(_ context.Context, v []byte) error  { return b.st.PutSealCheck(v) }

// sealChecks is where this keyfleetd's store keeps the check value.
func (s *Server) sealChecks() sealChecks {
	if s.pg != nil {
		return s.pg
	}
	return badgerChecks{s.badger}
}

// checkSealKey refuses a sealing key the store's secrets were not sealed
// under. A store keeps a check value (written at init, or at the first
// start of a store made before check values, once a sealed secret it
// holds has opened under the key). It returns an error wrapping
// seal.ErrWrongKey for a wrong key.
func checkSealKey(ctx context.Context, cs sealChecks, st core.Store, sl *seal.Sealer, log *slog.Logger) error {
	v, ok, err := cs.SealCheck(ctx)
	if err != nil {
		return fmt.Errorf("reading the sealing key's check value: %w", err)
	}
	if ok {
		if err := sl.Check(v); err != nil {
			return wrongSealKey(err)
		}
		return nil
	}
	if err := openOneSecret(ctx, st, sl); err != nil {
		return wrongSealKey(err)
	}
	if err := recordSealCheck(ctx, cs, sl); err != nil {
		if errors.Is(err, seal.ErrWrongKey) {
			return wrongSealKey(err)
		}
		log.Warn("the sealing key's check value could not be recorded yet; it will be at the next start", "err", err)
	}
	return nil
}

// recordSealCheck writes the check value of sl's key and checks the one
// the store then holds: another keyfleetd on the same database may have
// written its own first. It returns seal.ErrWrongKey when that one is
// another key's.
func recordSealCheck(ctx context.Context, cs sealChecks, sl *seal.Sealer) error {
	v, err := sl.CheckValue()
	if err != nil {
		return err
	}
	if err := cs.PutSealCheck(ctx, v); err != nil {
		return err
	}
	v, ok, err := cs.SealCheck(ctx)
	if err != nil {
		return err
	}
	if !ok {
		return errors.New("the sealing key's check value was not found in the store right after it was written: on PostgreSQL, check that store.postgres.dsn names the database the other keyfleetd use and that its user may write the meta table, then start keyfleetd again")
	}
	return sl.Check(v)
}

func wrongSealKey(err error) error {
	return fmt.Errorf("%w: refusing to start, since secrets would not open and new ones would be sealed under the wrong key. Give keyfleetd the sealing key this store was made with (KEYFLEET_SEAL_KEY, or keys/seal.key in the data folder, from your key backup; with PostgreSQL, the one every keyfleetd on this database shares, made by 'keyfleetd init --postgres')", err)
}

// openOneSecret opens the first sealed factor secret the store holds,
// if any: the check for stores made before check values.
func openOneSecret(ctx context.Context, st core.Store, sl *seal.Sealer) error {
	return st.View(ctx, func(tx core.ReadTx) error {
		pg := core.PageReq{Limit: core.MaxPageSize}
		for {
			fs, next, err := tx.Factors(core.FactorFilter{}, pg)
			if err != nil {
				return err
			}
			for _, f := range fs {
				if len(f.Secret) == 0 {
					continue
				}
				if _, err := sl.Open(f.Secret, []byte(f.ID)); err != nil {
					return fmt.Errorf("%w (factor %s's secret does not open)", seal.ErrWrongKey, f.ID)
				}
				return nil
			}
			if next == "" {
				return nil
			}
			pg.After = next
		}
	})
}

// initFaultChecks records what later starts check: the sealing key's
// check value (in the store: Badger or the database), and the checkpoint
// signing key (sealed, DIR/keys/checkpoint.key).
func initFaultChecks(ctx context.Context, dir string, cs sealChecks, sl *seal.Sealer) error {
	if err := recordSealCheck(ctx, cs, sl); err != nil {
		return fmt.Errorf("recording the sealing key's check value: %w", err)
	}
	_, err := checkpoint.LoadSigner(checkpointKeyPath(dir), sl, rand.Reader)
	return err
}

// firstCheckpoint signs the new store's head into the checkpoint file
// (initCheckpointFile), so that the first start has one to compare with.
func firstCheckpoint(dir, file string, st interface{ AuditHead() audit.Head }, sl *seal.Sealer) error {
	signer, err := checkpoint.LoadSigner(checkpointKeyPath(dir), sl, rand.Reader)
	if err != nil {
		return err
	}
	return checkpoint.File{Path: file}.Put(context.Background(), signer.Sign(st.AuditHead(), time.Now()))
}

// initCheckpointFile is where init writes the first checkpoint: the
// audit.checkpoint.file of the configuration file init wrote or kept (a
// packaged one names a folder the service may write), else beside the
// data folder, as serve reads it. A configuration file that does not load,
// or that puts the checkpoint inside the data folder, is refused: serve
// would refuse it too.
func initCheckpointFile(dir, configFile string) (string, error) {
	var c Config
	if err := c.LoadFile(configFile); err != nil {
		return "", fmt.Errorf("reading audit.checkpoint.file: %w", err)
	}
	c.Audit.defaults(dir)
	if inside(dir, c.Audit.Checkpoint.File) {
		return "", fmt.Errorf("%s: audit.checkpoint.file %s is inside the data folder %s; put it outside (ideally on another disk), where a copy of the data folder put back does not reach it", configFile, c.Audit.Checkpoint.File, dir)
	}
	return c.Audit.Checkpoint.File, nil
}

// anchor is the audit checkpoints' part of a running keyfleetd.
type anchor struct {
	cfg     AuditConfig
	signer  *checkpoint.Signer
	file    checkpoint.File
	witness *checkpoint.Witness
	mgr     *checkpoint.Manager
	// mismatch is what the start-up comparison found, when the daemon
	// serves anyway (on_mismatch: warn).
	mismatch error
	// startup is the start-up comparison's outcome.
	startup *startupCheck
}

// startupCheck is what the comparison with the newest checkpoint found at
// start-up: whether there was one, what was checked, and any mismatch.
type startupCheck struct {
	found bool
	rep   checkpoint.Report
	err   error
}

func newAnchor(cfg Config, sl *seal.Sealer) (*anchor, error) {
	signer, err := checkpoint.LoadSigner(checkpointKeyPath(cfg.DataDir), sl, rand.Reader)
	if err != nil {
		return nil, err
	}
	a := &anchor{cfg: cfg.Audit, signer: signer, file: checkpoint.File{Path: cfg.Audit.Checkpoint.File}}
	if u := cfg.Audit.Checkpoint.WitnessURL; u != "" {
		a.witness = &checkpoint.Witness{URL: u}
	}
	return a, nil
}

func (a *anchor) sources() []checkpoint.Source {
	src := []checkpoint.Source{a.file}
	if a.witness != nil {
		src = append(src, *a.witness)
	}
	return src
}

// outside are the places beyond the store itself.
func (a *anchor) outside() []checkpoint.Place {
	p := []checkpoint.Place{a.file}
	if a.witness != nil {
		p = append(p, *a.witness)
	}
	return p
}

// newest is the newest checkpoint signed by this keyfleetd's key among the
// file, the witness and what the manager wrote. A checkpoint that does not
// verify counts as a mismatch: it was altered, or signed by another key.
func (a *anchor) newest(ctx context.Context, log *slog.Logger) (checkpoint.Checkpoint, bool, error) {
	c, ok, bad, errs := checkpoint.Newest(ctx, a.signer.Public(), a.sources()...)
	for _, err := range errs {
		log.Warn("an audit checkpoint source could not be read", "err", err)
	}
	if a.mgr != nil {
		if m, found := a.mgr.Latest(); found && (!ok || m.Time.After(c.Time)) {
			c, ok = m, true
		}
	}
	if len(bad) > 0 {
		return c, ok, fmt.Errorf("%w: %v", checkpoint.ErrBadSignature, errors.Join(bad...))
	}
	return c, ok, nil
}

// check compares the store with the newest checkpoint: the record at its
// sequence number carries its hash, and every record after it links.
func (a *anchor) check(ctx context.Context, st checkpoint.Chain, log *slog.Logger) (checkpoint.Checkpoint, checkpoint.Report, bool, error) {
	c, ok, err := a.newest(ctx, log)
	if err != nil || !ok {
		return c, checkpoint.Report{}, ok, err
	}
	rep, err := checkpoint.VerifyFrom(ctx, st, c)
	return c, rep, true, err
}

// openAnchor loads the checkpoint key and compares the store with the
// newest checkpoint, refusing to start on a mismatch unless configured to
// warn.
func (s *Server) openAnchor(sl *seal.Sealer) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if s.pg != nil {
		if err := sharedCheckpointKey(ctx, s.cfg.DataDir, s.pg, sl); err != nil {
			return err
		}
	}
	a, err := newAnchor(s.cfg, sl)
	if err != nil {
		return err
	}
	s.anchor = a
	c, rep, ok, err := a.check(ctx, s.store, s.log)
	a.startup = &startupCheck{found: ok, rep: rep, err: err}
	switch {
	case err == nil && !ok:
		s.log.Info("no audit checkpoint yet: the first is written once keyfleetd serves (with PostgreSQL, by the leader)", "file", a.file.Path)
	case err == nil:
		s.log.Info("the store matches the newest audit checkpoint", "checkpoint_seq", c.Seq, "source", c.Source, "head_seq", s.store.AuditHead().Seq, "checked", rep.Checked)
	case errors.Is(err, checkpoint.ErrMismatch) || errors.Is(err, checkpoint.ErrBadSignature):
		if a.cfg.Checkpoint.OnMismatch == "warn" {
			s.log.Error("AUDIT CHECKPOINT MISMATCH: serving anyway (audit.checkpoint.on_mismatch: warn)", "err", err)
			a.mismatch = err
			return nil
		}
		return fmt.Errorf("%w\nkeyfleetd refuses to serve a store behind or beside its audit checkpoint. Restore the newest backup of the store, or accept the loss with 'keyfleetd recover --accept-loss --data %s' (it records the loss in the audit log and signs a new checkpoint); audit.checkpoint.on_mismatch: warn serves it anyway", err, s.cfg.DataDir)
	default:
		return fmt.Errorf("comparing the store with its audit checkpoint: %w", err)
	}
	return nil
}

// startCheckpoints makes the checkpoint writer, once the domain service
// (which records audit.checkpoint events) exists.
func (s *Server) startCheckpoints() error {
	a := s.anchor
	places := append(a.outside(), checkpoint.Events{Recorder: s.svc})
	mgr, err := checkpoint.New(checkpoint.Config{
		Head: s.store, Signer: a.signer, Places: places, Logger: s.log.With("component", "checkpoint"),
		Every: a.cfg.Checkpoint.Every, Interval: a.cfg.Checkpoint.Interval.Duration,
		Observe: s.faultMetrics.observeCheckpoint,
	})
	if err != nil {
		return err
	}
	for _, p := range places {
		s.faultMetrics.cpErrors.WithLabelValues(p.Name()) // each place's series from the start, at 0
	}
	if c, ok, _, _ := checkpoint.Newest(context.Background(), a.signer.Public(), a.sources()...); ok {
		mgr.Start(c)
		s.faultMetrics.observeCheckpoint("start", c, nil)
	}
	a.mgr = mgr
	return nil
}

// runCheckpoints runs the checkpoint writer until the returned stop is
// called; stop waits for its last checkpoint. With PostgreSQL the leader
// alone runs it (leaderWork).
func (s *Server) runCheckpoints() (stop func()) {
	if s.elector != nil {
		return func() {}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.anchor.mgr.Run(ctx) }()
	return func() { cancel(); <-done }
}

// CheckCheckpoint compares the audit log with the newest checkpoint, for
// audit verify (httpapi.CheckpointChecker).
func (s *Server) CheckCheckpoint(ctx context.Context) (*api.CheckpointCheck, audit.Head) {
	c, rep, ok, err := s.anchor.check(ctx, s.store, s.log)
	if !ok && err == nil {
		return nil, s.store.AuditHead()
	}
	out := &api.CheckpointCheck{Seq: c.Seq, Hash: c.Hash, Time: c.Time, Source: c.Source, OK: err == nil, Checked: rep.Checked}
	if err != nil {
		out.Problem = err.Error()
	}
	var me *checkpoint.MismatchError
	if errors.As(err, &me) && me.Break != nil {
		out.BrokenAt = me.Break.Seq
	}
	return out, rep.Head
}
