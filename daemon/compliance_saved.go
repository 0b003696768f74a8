package daemon

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/events"
	"github.com/keyfleet/keyfleet/internal/atomicfile"
)

// The compliance sweep evaluates every user: at a million users about
// five CPU-seconds and the read of every user's policy facts. keyfleetd
// keeps the newest sweep's gauges in DATA/compliance-gauges.json. A start
// within sweepEvery of that sweep publishes them at once and sweeps when
// the next one is due, so a restart neither empties the gauges nor adds
// a sweep. A start after a longer stop, of a store the kept gauges say is
// large, sweeps startGrace after the start: right after a start the
// store's pages are not in memory yet and clients reconnect, and a sweep
// then took the cores and the page cache from the first requests. Any
// other start (the first, or a small store) sweeps at once.
//
// Two starts do not take the kept gauges as they are. Gauges kept in
// another store epoch (the store was restored from a backup since) are
// not this store's: they are not published, and only their size counts.
// And a start puts the first sweep off only once: it writes when it did
// into the file, and a start that finds a put-off sweep never made (a
// keyfleetd restarting more often than startGrace) sweeps at once, so
// that the gauges and the audit of passed deadlines never stop.

const (
	// sweepEvery is how often the compliance gauges are refreshed and
	// passed deadlines audited.
	sweepEvery = 5 * time.Minute
	// startGrace is how long after a start the first sweep of a large
	// store waits; largeSweep is how many users make a store large (a
	// sweep of 100,000 costs about half a CPU-second).
	startGrace = time.Minute
	largeSweep = 100_000
	// savedComplianceFile is where the newest sweep's gauges are kept,
	// in the data folder.
	savedComplianceFile = "compliance-gauges.json"
)

// savedCompliance is what the gauges show: counts, overall and by group
// (group names, no user).
type savedCompliance struct {
	GeneratedAt time.Time `json:"generated_at"`
	// Epoch is the store epoch the sweep read ("" in files written
	// before it was kept, taken as this store's).
	Epoch string `json:"epoch,omitempty"`
	// DeferredAt is when a start put its first sweep off; a sweep
	// writes the file without it.
	DeferredAt time.Time                       `json:"deferred_at,omitzero"`
	Overall    api.ComplianceCounts            `json:"overall"`
	ByGroup    map[string]api.ComplianceCounts `json:"by_group"`
}

func (s *Server) savedCompliancePath() string {
	return filepath.Join(s.cfg.DataDir, savedComplianceFile)
}

// storeEpoch is the store's current epoch ("" for a store without).
func (s *Server) storeEpoch() string {
	if es, ok := s.store.(events.EpochSource); ok {
		return es.Epoch()
	}
	return ""
}

// saveCompliance keeps r's gauges for the next start. A failure (a full
// disk) costs only that: the next start sweeps at once, or after
// startGrace.
func (s *Server) saveCompliance(r api.ComplianceReport) {
	s.keepCompliance(savedCompliance{GeneratedAt: r.GeneratedAt, Epoch: s.storeEpoch(), Overall: r.Overall, ByGroup: r.ByGroup})
}

func (s *Server) keepCompliance(sc savedCompliance) {
	b, err := json.Marshal(sc)
	if err == nil {
		err = atomicfile.Write(s.savedCompliancePath(), b)
	}
	if err != nil {
		s.log.Warn("keeping the compliance gauges for the next start (it will sweep at once instead)", "err", err)
	}
}

// loadCompliance reads the gauges a previous run kept. A file that is
// missing is no error; one that cannot be read is reported and ignored.
func (s *Server) loadCompliance() (savedCompliance, bool) {
	path := s.savedCompliancePath()
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return savedCompliance{}, false
	}
	var sc savedCompliance
	if err == nil {
		err = json.Unmarshal(b, &sc)
		if err == nil && sc.GeneratedAt.IsZero() {
			err = errors.New("it has no generated_at")
		}
	}
	if err != nil {
		s.log.Warn("the compliance gauges kept by the last run cannot be read; keyfleetd sweeps at once and writes the file again",
			"path", path, "err", fmt.Sprint(err))
		return savedCompliance{}, false
	}
	return sc, true
}

// firstSweep is when the first compliance sweep of a run is due, given
// when keyfleetd started, the gauges a previous run kept (ok: there are
// some) and the store's epoch; fresh says the kept gauges are this
// store's and recent enough to publish until then.
func firstSweep(started time.Time, kept savedCompliance, ok bool, epoch string) (due time.Time, fresh bool) {
	if !ok || kept.GeneratedAt.After(started) { // nothing kept, or kept by a clock ahead of this one
		return started, false
	}
	sameStore := kept.Epoch == "" || kept.Epoch == epoch
	if next := kept.GeneratedAt.Add(sweepEvery); sameStore && next.After(started) {
		return next, true
	}
	if kept.Overall.Users >= largeSweep && kept.DeferredAt.IsZero() {
		return started.Add(startGrace), false
	}
	return started, false
}

// firstCompliance is the first sweep's time for this run, as firstSweep
// says, and the kept gauges to publish until then (ok: some). It logs
// why kept gauges are not published, and records a put-off sweep in the
// file.
func (s *Server) firstCompliance(started time.Time) (due time.Time, publish savedCompliance, ok bool) {
	kept, found := s.loadCompliance()
	epoch := s.storeEpoch()
	due, fresh := firstSweep(started, kept, found, epoch)
	if found && kept.Epoch != "" && kept.Epoch != epoch {
		s.log.Info("the kept compliance gauges are from another store epoch (the store was restored since): not shown; keyfleetd sweeps anew",
			"kept_epoch", kept.Epoch, "store_epoch", epoch, "sweep_in", due.Sub(started).Round(time.Second).String())
	}
	if found && !kept.DeferredAt.IsZero() && !fresh {
		s.log.Info("the last start put its compliance sweep off and stopped before making it: keyfleetd sweeps at once",
			"put_off_at", kept.DeferredAt.UTC().Format(time.RFC3339))
	}
	if due.After(started) && !fresh {
		kept.DeferredAt = started
		s.keepCompliance(kept)
		s.log.Info("the first compliance sweep waits while the large store's pages come in and clients reconnect",
			"users", kept.Overall.Users, "sweep_in", due.Sub(started).Round(time.Second).String())
	}
	return due, kept, fresh
}
