package directory

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"runtime"
	"runtime/debug"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/core"
)

// Errors of a sync.
var (
	// ErrBusy: a sync of the source is running already.
	ErrBusy = errors.New("a sync of this directory is running")
	// ErrLeaverLimit: the sync would disable more users than the limit
	// allows (LeaverLimitError says how many).
	ErrLeaverLimit = errors.New("too many leavers")
)

// LeaverLimitError says how many users a sync would have disabled. It
// wraps ErrLeaverLimit. Nothing was changed.
type LeaverLimitError struct {
	Source               string
	Would, Linked, Limit int
}

func (e *LeaverLimitError) Error() string {
	return fmt.Sprintf("the directory no longer has %d of the %d users keyfleet has from %s, more than the limit of %d (max_disable_percent, min_disable); "+
		"nothing was changed. If a filter or base changed by mistake, correct it; if they really left, run 'keyfleet directory sync --force'",
		e.Would, e.Linked, e.Source, e.Limit)
}

func (e *LeaverLimitError) Unwrap() error { return ErrLeaverLimit }

// reader reads a directory: everything, or what changed since a cursor
// (false when it cannot: the caller reads everything).
type reader interface {
	full(ctx context.Context) (read, error)
	changes(ctx context.Context, cursor string) (read, bool, error)
	commit(rd read)
}

// syncBatch is how many entries one transaction applies.
const syncBatch = 500

// Syncer runs the sync of one LDAP source, as its own principal
// (core.DirectoryPrincipal): what it grants waits for approval, what it
// takes away happens at once. It is safe for concurrent use; syncs of
// one source run one at a time.
type Syncer struct {
	cfg *LDAPConfig
	svc *core.Service
	p   core.Principal
	src core.DirectorySource
	rd  reader
	log *slog.Logger
	now func() time.Time
	met *syncMetrics

	mu       sync.Mutex // held by a running sync
	nextMu   sync.Mutex
	next     time.Time
	lastFull time.Time
}

// Options are what New takes besides the Config.
type Options struct {
	Logger *slog.Logger     // default discards
	Now    func() time.Time // default time.Now
	// Registerer publishes the sync's series (keyfleet_directory_…);
	// nil publishes none.
	Registerer prometheus.Registerer
	// PageHook runs after each page of each LDAP search, with the entries
	// read by that search so far (tests stop the directory mid-read).
	PageHook func(entries int)
}

func (o *Options) defaults() {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// NewSyncer validates cfg and returns the sync of its source.
func NewSyncer(cfg LDAPConfig, svc *core.Service, o Options) (*Syncer, error) {
	c := Config{LDAP: cfg}
	if !c.LDAPEnabled() {
		return nil, errors.New("ldap.url: no directory URL (ldaps://host:636)")
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	o.defaults()
	rd := &ldapReader{cfg: &c.LDAP, now: o.Now, pageHook: o.PageHook}
	return newSyncer(&c.LDAP, svc, rd, o), nil
}

func newSyncer(cfg *LDAPConfig, svc *core.Service, rd reader, o Options) *Syncer {
	o.defaults()
	src := core.DirectorySource{Kind: api.DirectoryLDAP}
	for _, g := range cfg.Groups {
		src.ManagedGroups = append(src.ManagedGroups, g)
	}
	for _, r := range cfg.Roles {
		src.ManagedRoles = append(src.ManagedRoles, r)
	}
	slices.Sort(src.ManagedGroups)
	slices.Sort(src.ManagedRoles)
	return &Syncer{cfg: cfg, svc: svc, p: core.DirectoryPrincipal(cfg.Name), src: src, rd: rd,
		log: o.Logger.With("component", "directory", "source", cfg.Name), now: o.Now,
		met: newSyncMetrics(o.Registerer, cfg.Name, cfg.Interval.Duration)}
}

// Name is the source's name.
func (s *Syncer) Name() string { return s.cfg.Name }

// Sync reads the directory and applies it: every user (a full sync,
// which also disables the users the directory no longer has), or with
// req.Incremental only what changed where the directory and this
// process allow it. The directory is read completely before anything is
// written: a directory that fails or goes away during the read changes
// nothing. The report is kept as the source's last (not a dry run's).
// Errors: ErrBusy, ErrUnreachable, ErrBind, ErrTLS, ErrSearch,
// *LeaverLimitError, and the store's.
func (s *Syncer) Sync(ctx context.Context, req api.DirectorySync) (api.DirectorySyncReport, error) {
	if !s.mu.TryLock() {
		return api.DirectorySyncReport{}, fmt.Errorf("%w (%s); wait for it to finish ('keyfleet directory status')", ErrBusy, s.cfg.Name)
	}
	defer s.mu.Unlock()
	// The mode asked for until the read says which it is (an incremental
	// sync with nothing to start from reads everything).
	rep := api.DirectorySyncReport{Source: s.cfg.Name, Mode: api.SyncFull, DryRun: req.DryRun, StartedAt: s.now().UTC()}
	if req.Incremental {
		rep.Mode = api.SyncIncremental
	}
	cursor, err := s.run(ctx, req, &rep)
	rep.FinishedAt = s.now().UTC()
	if err != nil {
		rep.Error = err.Error()
		s.log.Warn("directory sync failed", "mode", rep.Mode, "err", err)
	} else {
		s.log.Info("directory synced", "mode", rep.Mode, "dry_run", rep.DryRun, "seen", rep.Seen, "created", rep.Created,
			"updated", rep.Updated, "renamed", rep.Renamed, "disabled", rep.Disabled, "enabled", rep.Enabled, "requested", rep.Requested,
			"took_ms", rep.FinishedAt.Sub(rep.StartedAt).Milliseconds(), "memory_mb", rep.MemoryBytes>>20)
	}
	s.met.record(rep)
	if rerr := s.svc.RecordDirectorySync(context.WithoutCancel(ctx), s.p, api.DirectoryLDAP, rep, cursor); rerr != nil {
		s.log.Warn("recording the directory sync", "err", rerr)
	}
	return rep, err
}

// run reads and applies; it returns the cursor to keep.
func (s *Syncer) run(ctx context.Context, req api.DirectorySync, rep *api.DirectorySyncReport) (string, error) {
	rd, err := s.read(ctx, req)
	if err != nil {
		return "", err
	}
	rep.Mode = api.SyncIncremental
	if rd.full {
		rep.Mode = api.SyncFull
	}
	rep.Seen = rd.entries.len()
	if rd.state != nil {
		rep.MemoryBytes = rd.state.size()
		if w := memoryWarning(rep.MemoryBytes, len(rd.state.users), debug.SetMemoryLimit(-1)); w != "" {
			rd.warnings = append(rd.warnings, w)
		}
	}
	for _, p := range rd.problems {
		notePart(rep, api.DirectoryChange{What: api.ChangeSkipped, Detail: p})
		rep.Skipped++
	}
	for _, w := range rd.warnings {
		notePart(rep, api.DirectoryChange{What: api.ChangeWarning, Detail: w})
		s.log.Warn("directory read", "warning", w)
	}
	var leavers []string
	if rd.full {
		if leavers, err = s.leavers(ctx, rd, req.Force); err != nil {
			return "", err
		}
	}
	src := s.src
	src.DryRun = req.DryRun
	if err := s.apply(ctx, src, rd.entries, rep); err != nil {
		return "", err
	}
	if err := s.svc.DisableLeavers(ctx, s.p, src, leavers, rep); err != nil {
		return "", err
	}
	if !req.DryRun {
		s.rd.commit(rd)
		if rd.full {
			s.lastFull = rep.StartedAt
		}
	}
	return rd.cursor, nil
}

// apply applies the entries a batch per transaction, on as many
// goroutines as there are CPUs (each batch is its own users; the store
// orders the commits). The first error stops the others; the batches
// committed before it stay, each whole.
func (s *Syncer) apply(ctx context.Context, src core.DirectorySource, entries entryList, rep *api.DirectorySyncReport) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	work := make(chan []core.DirectoryEntry)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range max(1, min(runtime.GOMAXPROCS(0), entries.len()/syncBatch)) {
		wg.Go(func() {
			for chunk := range work {
				var part api.DirectorySyncReport
				if err := s.applyChunk(ctx, src, chunk, &part); err != nil {
					cancel(err)
					continue
				}
				mu.Lock()
				core.MergeSyncReport(rep, part)
				mu.Unlock()
			}
		})
	}
	for i := 0; i < entries.len(); i += syncBatch {
		if ctx.Err() != nil {
			break
		}
		work <- entries.batch(i, min(i+syncBatch, entries.len()))
	}
	close(work)
	wg.Wait()
	return context.Cause(ctx)
}

// applyChunk applies one batch in one transaction, or in halves when the
// store cannot take it whole (a small memtable).
func (s *Syncer) applyChunk(ctx context.Context, src core.DirectorySource, chunk []core.DirectoryEntry, part *api.DirectorySyncReport) error {
	err := s.svc.SyncDirectory(ctx, s.p, src, chunk, part)
	if !errors.Is(err, core.ErrTxnTooLarge) || len(chunk) < 2 {
		return err
	}
	half := len(chunk) / 2
	if err := s.applyChunk(ctx, src, chunk[:half], part); err != nil {
		return err
	}
	return s.applyChunk(ctx, src, chunk[half:], part)
}

// read reads everything, or only what changed when asked and possible:
// an earlier full read in this process, a kept cursor, and a full read
// no older than full_interval.
func (s *Syncer) read(ctx context.Context, req api.DirectorySync) (read, error) {
	if req.Incremental && !s.lastFull.IsZero() && s.now().Sub(s.lastFull) < s.cfg.FullInterval.Duration {
		cursor, _, err := s.svc.DirectoryCursor(ctx, s.p)
		if err != nil {
			return read{}, err
		}
		rd, ok, err := s.rd.changes(ctx, cursor)
		if err != nil || ok {
			return rd, err
		}
	}
	return s.rd.full(ctx)
}

// leavers finds the linked users a full read did not see, and refuses
// more than the limit unless forced.
func (s *Syncer) leavers(ctx context.Context, rd read, force bool) ([]string, error) {
	seen := func(id string) bool { return rd.state.seen(id) }
	leavers, linked, err := s.svc.DirectoryLeavers(ctx, s.p, seen)
	if err != nil {
		return nil, err
	}
	limit := max(s.cfg.MinDisable, linked*s.cfg.MaxDisablePercent/100)
	if len(leavers) > limit && !force {
		return nil, &LeaverLimitError{Source: s.cfg.Name, Would: len(leavers), Linked: linked, Limit: limit}
	}
	return leavers, nil
}

// memoryWarning says when the directory as kept (bytes, for users) takes
// more than a quarter of the Go memory limit: with Badger's memtables and
// caches and a sync's own work on top, the collector would then run
// often, or without pause. Empty when it does not, or no limit is set.
func memoryWarning(bytes int64, users int, limit int64) string {
	if limit <= 0 || limit == math.MaxInt64 || bytes <= limit/4 || users == 0 {
		return ""
	}
	return fmt.Sprintf("the directory as read takes about %d MiB of keyfleetd's memory (%d bytes a user, %d users), more than a quarter of its memory limit of %d MiB: "+
		"raise store.memory by at least %d MiB (and the service's MemoryHigh with it; docs/operations.md, \"Memory\")",
		bytes>>20, bytes/int64(users), users, limit>>20, (3*bytes)>>20)
}

// notePart adds a change to a report, up to api.MaxSyncChanges.
func notePart(rep *api.DirectorySyncReport, c api.DirectoryChange) {
	if len(rep.Changes) >= api.MaxSyncChanges {
		rep.ChangesOmitted++
		return
	}
	rep.Changes = append(rep.Changes, c)
}

// Run syncs now and then every interval until ctx ends: incrementally
// where it can, fully every full_interval.
func (s *Syncer) Run(ctx context.Context) {
	for {
		if _, err := s.Sync(ctx, api.DirectorySync{Incremental: true}); err != nil && ctx.Err() != nil {
			return
		}
		next := s.now().Add(s.cfg.Interval.Duration)
		s.nextMu.Lock()
		s.next = next
		s.nextMu.Unlock()
		t := time.NewTimer(s.cfg.Interval.Duration)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// NextSync is when Run syncs next (zero when it is not running).
func (s *Syncer) NextSync() time.Time {
	s.nextMu.Lock()
	defer s.nextMu.Unlock()
	return s.next
}
