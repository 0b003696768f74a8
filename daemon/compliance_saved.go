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
	GeneratedAt time.Time                       `json:"generated_at"`
	Overall     api.ComplianceCounts            `json:"overall"`
	ByGroup     map[string]api.ComplianceCounts `json:"by_group"`
}

func (s *Server) savedCompliancePath() string {
	return filepath.Join(s.cfg.DataDir, savedComplianceFile)
}

// saveCompliance keeps r's gauges for the next start. A failure (a full
// disk) costs only that: the next start sweeps after startGrace.
func (s *Server) saveCompliance(r api.ComplianceReport) {
	b, err := json.Marshal(savedCompliance{GeneratedAt: r.GeneratedAt, Overall: r.Overall, ByGroup: r.ByGroup})
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
// when keyfleetd started and the gauges a previous run kept (ok: there
// are some); fresh says they are recent enough to publish until then.
func firstSweep(started time.Time, kept savedCompliance, ok bool) (due time.Time, fresh bool) {
	if !ok || kept.GeneratedAt.After(started) { // nothing kept, or kept by a clock ahead of this one
		return started, false
	}
	if next := kept.GeneratedAt.Add(sweepEvery); next.After(started) {
		return next, true
	}
	if kept.Overall.Users >= largeSweep {
		return started.Add(startGrace), false
	}
	return started, false
}
