package push

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/core"
	"github.com/keyfleet/keyfleet/daemon/ratelimit"
)

// Service is what the hub needs of the domain (*core.Service).
type Service interface {
	AnswerOutOfBand(ctx context.Context, ticket, factorID string, response []byte) (core.OutOfBandOutcome, error)
	ExpireOutOfBand(ctx context.Context, ticket, factorID string) (bool, error)
	DeviceFactor(ctx context.Context, id string) (core.Factor, error)
}

var _ core.OutOfBand = (*Hub)(nil)

// Options are what a Hub takes besides its Config.
type Options struct {
	Logger     *slog.Logger          // default discards
	Registerer prometheus.Registerer // nil: metrics are kept but not registered
	Now        func() time.Time      // default time.Now
	// ResultTTL is how long an outcome waits for the application to take
	// it (default 5m).
	ResultTTL time.Duration
	// Shared, if set, keeps the per-user cap where every keyfleetd on one
	// database counts together (*cluster.Buckets); nil keeps it in this
	// process (one keyfleetd, Badger).
	Shared Shared
	// Board, if set, keeps the pending pushes themselves where every
	// keyfleetd on one database sees them (*cluster.Pushes): a push
	// begun on one reaches companions connected to any, is answered on
	// any, and outlives a restart. nil keeps them in this process.
	Board Board
}

// Shared decides pushes against token buckets that several keyfleetd
// share (ratelimit.Shared): -1 when the push may go (a token is taken),
// else the bucket without a token and how long until it has one. An error
// means nothing was counted.
type Shared interface {
	Take(ctx context.Context, now time.Time, buckets []ratelimit.Bucket) (refused int, wait time.Duration, err error)
}

// Hub keeps pending pushes, the companions' open channels and the
// gateways. Create it with New, hand it to core.Config.OutOfBand, then
// Attach the service. It is safe for concurrent use.
type Hub struct {
	cfg     Config
	log     *slog.Logger
	now     func() time.Time
	keep    time.Duration
	metrics *metrics
	gw      *gateways
	replay  replayCache
	shared  Shared

	mu      sync.Mutex
	svc     Service
	closed  bool
	stop    chan struct{} // closed by Close: waiters and streams end
	pending map[string]*entry
	waiting map[string][]*entry  // undecided entries by factor id, oldest first
	streams map[string][]*Stream // by factor id, oldest first
	sent    map[string][]time.Time

	board     Board
	watchers  map[string][]chan struct{} // Await calls by push id (Board)
	forwarded map[string]forward         // pushes sent to streams here, by id (Board)
	tagged    map[string]string          // factor id by Board.Tag, of the factors with a stream here (Board)
	kick      chan struct{}              // wakes the sweeper (Board)
	// boardPending is the board's pending pushes as the last sweep
	// counted them (Board).
	boardPending atomic.Int64
	bgCancel     context.CancelFunc
	bg           sync.WaitGroup
}

// entry is one pending push and, once decided, its outcome.
type entry struct {
	p         core.Pending
	timer     *time.Timer
	done      chan struct{} // closed when decided
	answering bool
	decided   bool
	taken     bool
	res       api.VerifyResult
}

func key(vid, fid string) string { return vid + "/" + fid }

// New validates cfg and returns a hub with no service attached.
func New(cfg Config, o Options) (*Hub, error) {
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.ResultTTL == 0 {
		o.ResultTTL = 5 * time.Minute
	}
	h := &Hub{cfg: cfg, log: o.Logger, now: o.Now, keep: o.ResultTTL, metrics: newMetrics(o.Registerer), shared: o.Shared,
		stop: make(chan struct{}), pending: map[string]*entry{}, waiting: map[string][]*entry{}, streams: map[string][]*Stream{}, sent: map[string][]time.Time{}}
	h.replay = replayCache{seen: map[string]time.Time{}}
	gw, err := newGateways(cfg.Gateways, h.log, h.metrics)
	if err != nil {
		return nil, err
	}
	h.gw = gw
	h.metrics.pendingFunc(h.pendingCount)
	h.metrics.devicesFunc(h.deviceCount)
	if o.Board != nil {
		h.startBoard(o.Board)
	}
	return h, nil
}

// Attach hands the hub the domain service, which it calls when a
// companion answers and when a push runs out.
func (h *Hub) Attach(svc Service) {
	h.mu.Lock()
	h.svc = svc
	h.mu.Unlock()
}

func (h *Hub) service() Service {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.svc
}

// Close ends every stream and wait, and stops the gateways. Pending
// pushes in memory are dropped: their verifications fail as closed; with
// a Board they wait on there, and the listener and sweeper stop.
func (h *Hub) Close() {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return
	}
	h.closed = true
	close(h.stop)
	for _, e := range h.pending {
		e.timer.Stop()
	}
	h.pending, h.waiting = map[string]*entry{}, map[string][]*entry{}
	h.mu.Unlock()
	if h.bgCancel != nil {
		h.bgCancel()
		h.bg.Wait()
	}
	h.gw.close()
}

// LimitError is a push refused because its user had too many in the
// window. It wraps core.ErrTooMany; RetryAfter says when the next may go.
type LimitError struct {
	User  string
	Max   int
	Per   time.Duration
	After time.Duration
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("%d pushes to %s in %s already; wait %d seconds before asking for another (too many pushes wear people into approving)",
		e.Max, e.User, e.Per, max(1, int(e.After.Seconds())))
}

func (e *LimitError) Unwrap() error             { return core.ErrTooMany }
func (e *LimitError) RetryAfter() time.Duration { return e.After }

// Deliver keeps p pending, sends it to the factor's open streams and the
// gateways, and closes it at its deadline. Errors: *LimitError,
// core.ErrUnavailable when the hub is closed or full, or the shared cap
// could not be counted.
func (h *Hub) Deliver(ctx context.Context, p core.Pending) error {
	if h.board != nil {
		return h.deliverShared(ctx, p)
	}
	now := h.now()
	if h.shared != nil {
		if err := h.room(); err != nil {
			return err
		}
		if err := h.admitShared(ctx, p.UserID, p.Username, now); err != nil {
			return err
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.roomLocked(); err != nil {
		return err
	}
	if h.shared == nil {
		if err := h.admit(p.UserID, p.Username, now); err != nil {
			h.metrics.limited.Inc()
			return err
		}
	}
	k := key(p.VerificationID, p.FactorID)
	e := &entry{p: p, done: make(chan struct{})}
	e.timer = time.AfterFunc(max(0, p.Deadline.Sub(now)), func() { h.expire(k, e) })
	h.pending[k] = e
	h.waiting[p.FactorID] = append(h.waiting[p.FactorID], e)
	for _, s := range h.streams[p.FactorID] {
		s.send(Event{Type: EventPush, Data: p.Delivery})
	}
	h.metrics.sent.Inc()
	h.gw.notify(noticeOf(p))
	return nil
}

// room refuses a push when the hub is closed or full.
func (h *Hub) room() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.roomLocked()
}

func (h *Hub) roomLocked() error {
	switch {
	case h.closed:
		return fmt.Errorf("%w: keyfleetd is stopping", core.ErrUnavailable)
	case len(h.pending) >= h.cfg.MaxPending:
		return fmt.Errorf("%w: %d pushes are waiting already; try again shortly", core.ErrUnavailable, len(h.pending))
	}
	return nil
}

// admitShared applies the per-user limit in the shared buckets: one per
// user holding MaxPerUser pushes and gaining one every Period, so that
// no Period holds more than MaxPerUser pushes to a user, whichever
// keyfleetd sends them. h.mu is not held (a round trip to the database).
func (h *Hub) admitShared(ctx context.Context, userID, username string, now time.Time) error {
	b := []ratelimit.Bucket{{Key: "push\x00" + userID, Burst: h.cfg.MaxPerUser, Every: h.cfg.Period.Duration}}
	refused, wait, err := h.shared.Take(ctx, now, b)
	if err != nil {
		return fmt.Errorf("counting the push against %s's limit: %w", username, err)
	}
	if refused >= 0 {
		h.metrics.limited.Inc()
		return &LimitError{User: username, Max: h.cfg.MaxPerUser, Per: h.cfg.Period.Duration, After: wait}
	}
	return nil
}

// admit applies the per-user limit and counts the push. h.mu is held.
func (h *Hub) admit(userID, username string, now time.Time) error {
	window := h.sent[userID][:0]
	for _, t := range h.sent[userID] {
		if now.Sub(t) < h.cfg.Period.Duration {
			window = append(window, t)
		}
	}
	if len(window) >= h.cfg.MaxPerUser {
		h.sent[userID] = window
		return &LimitError{User: username, Max: h.cfg.MaxPerUser, Per: h.cfg.Period.Duration, After: h.cfg.Period.Duration - now.Sub(window[0])}
	}
	h.sent[userID] = append(window, now)
	if len(h.sent) > 4*h.cfg.MaxPending { // forget users whose window is empty
		for u, ts := range h.sent {
			if len(ts) == 0 || now.Sub(ts[len(ts)-1]) >= h.cfg.Period.Duration {
				delete(h.sent, u)
			}
		}
	}
	return nil
}

// expire closes a push at its deadline, or forgets a decided one whose
// outcome nobody took.
func (h *Hub) expire(k string, e *entry) {
	h.mu.Lock()
	if h.pending[k] != e {
		h.mu.Unlock()
		return
	}
	if e.decided {
		delete(h.pending, k)
		h.mu.Unlock()
		return
	}
	answering := e.answering
	h.mu.Unlock()
	if answering { // an answer is being recorded: it decides
		e.timer.Reset(time.Second)
		return
	}
	expired := false
	if svc := h.service(); svc != nil {
		var err error
		if expired, err = svc.ExpireOutOfBand(context.Background(), e.p.Ticket, e.p.FactorID); err != nil {
			h.log.Warn("push: recording an unanswered push", "factor_id", e.p.FactorID, "err", err)
		}
	}
	if expired {
		h.metrics.answers.WithLabelValues("unanswered").Inc()
	}
	h.decide(k, e, api.VerifyResult{UserID: e.p.UserID, FactorID: e.p.FactorID, Kind: e.p.Kind}, "expired")
}

// decide records e's outcome, wakes its waiters, tells its streams, and
// keeps the outcome for the application until ResultTTL.
func (h *Hub) decide(k string, e *entry, res api.VerifyResult, outcome string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if e.decided || h.pending[k] != e {
		return
	}
	e.decided, e.answering, e.res = true, false, res
	close(e.done)
	if w := slices.DeleteFunc(h.waiting[e.p.FactorID], func(x *entry) bool { return x == e }); len(w) > 0 {
		h.waiting[e.p.FactorID] = w
	} else {
		delete(h.waiting, e.p.FactorID)
	}
	e.timer.Stop()
	e.timer.Reset(h.keep)
	for _, s := range h.streams[e.p.FactorID] {
		s.send(closedEvent(e.p, outcome))
	}
}

// Await waits up to wait for a push's outcome and hands it over once.
// Errors: core.ErrVerificationClosed when nothing is pending under the
// id (never delivered here, taken already, forgotten at a restart),
// core.ErrUnavailable when keyfleetd stops, ctx's error.
func (h *Hub) Await(ctx context.Context, vid, fid string, wait time.Duration) (api.VerifyResult, bool, error) {
	if h.board != nil {
		return h.awaitShared(ctx, vid, fid, wait)
	}
	k := key(vid, fid)
	h.mu.Lock()
	e := h.pending[k]
	if e == nil || e.taken {
		h.mu.Unlock()
		return api.VerifyResult{}, false, core.ErrVerificationClosed
	}
	h.mu.Unlock()
	t := time.NewTimer(max(0, wait))
	defer t.Stop()
	select {
	case <-e.done:
	case <-t.C:
	case <-ctx.Done():
		return api.VerifyResult{}, false, ctx.Err()
	case <-h.stop:
		return api.VerifyResult{}, false, fmt.Errorf("%w: keyfleetd is stopping; the push is lost, begin again", core.ErrUnavailable)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case e.taken || h.pending[k] != e:
		return api.VerifyResult{}, false, core.ErrVerificationClosed
	case !e.decided:
		return api.VerifyResult{}, false, nil
	}
	e.taken = true
	delete(h.pending, k)
	e.timer.Stop()
	return e.res, true, nil
}

// ErrWrongDevice: an answer names a factor other than the device's own.
var ErrWrongDevice = errors.New("the answer is for another device")

// Answer records a companion's answer for its own factor f. Errors:
// core.ErrVerificationClosed (not pending: answered, run out, or lost at
// a restart), ErrWrongDevice (wraps core.ErrForbidden), core.ErrInvalid
// for an answer without its ids, and the service's errors (a transient
// one leaves the push pending so that the companion can try again).
func (h *Hub) Answer(ctx context.Context, f core.Factor, vid, fid string, body []byte) (core.OutOfBandOutcome, error) {
	if vid == "" || fid == "" {
		return core.OutOfBandOutcome{}, &core.ValidationError{Field: "verification_id", Reason: "the answer must name its verification_id and factor_id"}
	}
	if fid != f.ID {
		return core.OutOfBandOutcome{}, fmt.Errorf("%w: %w", core.ErrForbidden, ErrWrongDevice)
	}
	if h.board != nil {
		return h.answerShared(ctx, vid, fid, body)
	}
	k := key(vid, fid)
	h.mu.Lock()
	e := h.pending[k]
	if e == nil || e.decided || e.answering || h.svc == nil {
		h.mu.Unlock()
		return core.OutOfBandOutcome{}, errNotWaiting
	}
	e.answering = true
	svc := h.svc
	h.mu.Unlock()
	out, err := svc.AnswerOutOfBand(ctx, e.p.Ticket, fid, body)
	if err != nil && transient(err) {
		h.mu.Lock()
		e.answering = false
		h.mu.Unlock()
		return out, err
	}
	if err != nil {
		out.Result = api.VerifyResult{UserID: e.p.UserID, FactorID: fid, Kind: e.p.Kind}
	}
	outcome := outcomeOf(out, err)
	h.metrics.answers.WithLabelValues(outcome).Inc()
	h.decide(k, e, out.Result, outcome)
	return out, err
}

// errNotWaiting is what an answer to a push that no longer waits gets.
var errNotWaiting = fmt.Errorf("%w: this push is no longer waiting: it was answered, ran out, or keyfleetd restarted since it was sent", core.ErrVerificationClosed)

// transient errors leave a push pending: the store could not take the
// answer now.
func transient(err error) bool {
	return errors.Is(err, core.ErrUnavailable) || errors.Is(err, core.ErrConflict) || errors.Is(err, core.ErrStorageFull) ||
		errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

func outcomeOf(out core.OutOfBandOutcome, err error) string {
	switch {
	case err != nil:
		return "refused"
	case out.Result.OK:
		return "approved"
	case out.Reported:
		return "reported"
	}
	return "refused"
}

func (h *Hub) pendingCount() float64 {
	if h.board != nil {
		return float64(h.boardPending.Load())
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return float64(len(h.pending))
}

// Connected is how many companions have a stream open.
func (h *Hub) Connected() float64 { return h.deviceCount() }

func (h *Hub) deviceCount() float64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return float64(len(h.streams))
}

// KeepAlive is how often an idle stream gets a comment line.
func (h *Hub) KeepAlive() time.Duration { return h.cfg.KeepAlive.Duration }
