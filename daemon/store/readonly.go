package store

import (
	"fmt"
	"time"
)

// watchSpace starts measuring the store's free space: at once, then every
// SpaceCheckEvery (and at every sync, see flush) until Close.
func (s *Store) watchSpace() {
	s.space = &spaceGuard{dir: s.opts.Dir, statfs: s.opts.statfs, reserve: s.reserve.Load, log: s.log}
	s.prep = newWALPrep(s.opts.Dir, memTableSize(s.opts))
	if s.readOnly.Load() {
		s.log.Error("the store was opened READ-ONLY: its disk has less free space than the reserve; reads work, writes are refused until space returns",
			"dir", s.opts.Dir)
	}
	s.sizeReserve()
	s.checkSpace()
	s.every(s.opts.SpaceCheckEvery, func() {
		s.sizeReserve()
		s.checkSpace()
	})
}

// every runs fn every d on a goroutine of its own until the store closes
// (Close waits for it before closing Badger).
func (s *Store) every(d time.Duration, fn func()) {
	s.watching.Add(1)
	go func() {
		defer s.watching.Done()
		t := time.NewTicker(d)
		defer t.Stop()
		for {
			select {
			case <-s.stopWait:
				return
			case <-t.C:
				fn()
			}
		}
	}()
}

// sizeReserve sizes the reserve for the store's size now (reading the
// folder: done by the watch, not at every sync).
func (s *Store) sizeReserve() { s.reserve.Store(reserveFor(s.opts, s.Size())) }

// checkSpace prepares the write-ahead logs, measures the free space and
// updates the state writes are refused in. A store opened read-only
// reopens for writing once there is room.
func (s *Store) checkSpace() {
	if s.space == nil {
		return
	}
	s.prepMu.Lock()
	defer s.prepMu.Unlock()
	if !s.readOnly.Load() {
		s.space.check(s.prep.ensure(), false)
		return
	}
	s.space.check("", true)
	if !s.space.roomToResume() {
		return
	}
	if err := s.reopen(); err != nil {
		s.log.Error("reopening the store for writing failed; it stays read-only and tries again", "dir", s.opts.Dir, "err", err)
		return
	}
	s.log.Warn("the store has room again and was reopened for writing", "dir", s.opts.Dir)
	s.space.check(s.prep.ensure(), false)
}

// reopen closes the read-only Badger and opens it for writing. It holds
// dbMu, so no read or write runs meanwhile; none waits for a sync, since
// a read-only store commits nothing. If the store cannot be opened for
// writing it is opened read-only again.
func (s *Store) reopen() error {
	s.dbMu.Lock()
	defer s.dbMu.Unlock()
	select {
	case <-s.stopWait:
		return fmt.Errorf("the store is closing")
	default:
	}
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("closing the read-only store: %w", err)
	}
	if err := removeAheadLogs(s.opts.Dir); err != nil {
		return s.reopenReadOnly(err)
	}
	db, err := openBadger(s.opts, false)
	if err != nil {
		return s.reopenReadOnly(err)
	}
	s.db = db
	s.readOnly.Store(false)
	s.prep = newWALPrep(s.opts.Dir, memTableSize(s.opts))
	return nil
}

// reopenReadOnly goes back to a read-only Badger after a failed reopen;
// if even that fails, the store is closed to reads and writes for good.
func (s *Store) reopenReadOnly(cause error) error {
	db, err := openBadger(s.opts, true)
	if err != nil {
		s.fail(fmt.Errorf("the store could not be reopened (%v, then %v); restart keyfleetd", cause, err))
		return err
	}
	s.db = db
	return cause
}

// SpaceStats reports the last measure of the store's free space.
func (s *Store) SpaceStats() SpaceStats {
	if s.space == nil {
		return SpaceStats{}
	}
	return s.space.stats()
}
