package push

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/core"
)

// The hub with a Board (several keyfleetd on one PostgreSQL database):
// pushes are filed on the board, and each keyfleetd forwards the board's
// notices to its own companions' streams and wakes its own waiters. Every
// keyfleetd sweeps the pushes past their deadline (each is claimed once).

const (
	// sweepEvery is how often every keyfleetd looks for pushes past their
	// deadline (the one that sent a push also looks at its deadline).
	sweepEvery = 2 * time.Second
	// pollEvery is how often a waiting application looks at the board
	// besides the notices (one may be lost with a connection).
	pollEvery = time.Second
	// staleClaim is how long an answer may take to be recorded before a
	// sweep closes its push (the keyfleetd recording it stopped).
	staleClaim = time.Minute
	// boardTimeout bounds one round trip to the board.
	boardTimeout = 5 * time.Second
)

// forward is a push sent to streams here: where its closed event goes.
type forward struct {
	p core.Pending
}

func (h *Hub) startBoard(b Board) {
	h.board = b
	h.watchers, h.forwarded, h.tagged = map[string][]chan struct{}{}, map[string]forward{}, map[string]string{}
	h.kick = make(chan struct{}, 1)
	ctx, cancel := context.WithCancel(context.Background())
	h.bgCancel = cancel
	h.bg.Add(2)
	go func() { defer h.bg.Done(); b.Listen(ctx, h.onListening, h.onNotice) }()
	go func() { defer h.bg.Done(); h.sweeper(ctx) }()
}

func boardCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, boardTimeout)
}

func unavailable(what string, err error) error {
	if errors.Is(err, core.ErrUnavailable) {
		return fmt.Errorf("%s: %w", what, err)
	}
	return fmt.Errorf("%w: %s: %v", core.ErrUnavailable, what, err)
}

// deliverShared is Deliver with a Board: the push is filed there, and
// every keyfleetd's streams get it through the board's notice.
func (h *Hub) deliverShared(ctx context.Context, p core.Pending) error {
	now := h.now()
	if err := h.room(); err != nil {
		return err
	}
	if n := h.boardPending.Load(); n >= int64(h.cfg.MaxPending) {
		return fmt.Errorf("%w: %d pushes are waiting already; try again shortly", core.ErrUnavailable, n)
	}
	if h.shared != nil {
		if err := h.admitShared(ctx, p.UserID, p.Username, now); err != nil {
			return err
		}
	} else {
		h.mu.Lock()
		err := h.admit(p.UserID, p.Username, now)
		h.mu.Unlock()
		if err != nil {
			h.metrics.limited.Inc()
			return err
		}
	}
	bctx, cancel := boardCtx(ctx)
	defer cancel()
	if err := h.board.Put(bctx, p); err != nil {
		return unavailable("keeping the push where every keyfleetd sees it", err)
	}
	time.AfterFunc(max(0, p.Deadline.Sub(now)), h.kickSweep)
	h.metrics.sent.Inc()
	h.gw.notify(noticeOf(p))
	return nil
}

// answerShared is Answer with a Board: the push is claimed there, once,
// whichever keyfleetd the answer reaches.
func (h *Hub) answerShared(ctx context.Context, vid, fid string, body []byte) (core.OutOfBandOutcome, error) {
	svc := h.service()
	if svc == nil {
		return core.OutOfBandOutcome{}, errNotWaiting
	}
	bctx, cancel := boardCtx(ctx)
	p, err := h.board.Claim(bctx, vid, fid, h.now())
	cancel()
	switch {
	case errors.Is(err, ErrNotPending):
		return core.OutOfBandOutcome{}, errNotWaiting
	case err != nil:
		return core.OutOfBandOutcome{}, unavailable("taking the answer", err)
	}
	out, err := svc.AnswerOutOfBand(ctx, p.Ticket, fid, body)
	if err != nil && transient(err) {
		bctx, cancel := boardCtx(context.WithoutCancel(ctx))
		defer cancel()
		if rerr := h.board.Release(bctx, vid, fid); rerr != nil {
			h.log.Warn("push: putting back a push whose answer could not be recorded", "factor_id", fid, "err", rerr)
		}
		return out, err
	}
	if err != nil {
		out.Result = api.VerifyResult{UserID: p.UserID, FactorID: fid, Kind: p.Kind}
	}
	outcome := outcomeOf(out, err)
	h.metrics.answers.WithLabelValues(outcome).Inc()
	h.decideShared(p, out.Result, outcome)
	return out, err
}

// decideShared records a claimed push's outcome on the board.
func (h *Hub) decideShared(p core.Pending, res api.VerifyResult, outcome string) {
	ctx, cancel := boardCtx(context.Background())
	defer cancel()
	o := Outcome{Result: res, Outcome: outcome}
	if err := h.board.Decide(ctx, p.VerificationID, p.FactorID, o, h.now().Add(h.keep)); err != nil {
		// The verification is used up in the store already: the
		// application learns nothing and the push is closed at the next
		// sweep past staleClaim.
		h.log.Warn("push: recording a push's outcome", "factor_id", p.FactorID, "outcome", outcome, "err", err)
	}
}

// awaitShared is Await with a Board: the outcome is taken there, once,
// whichever keyfleetd the answer reached.
func (h *Hub) awaitShared(ctx context.Context, vid, fid string, wait time.Duration) (api.VerifyResult, bool, error) {
	id := h.board.ID(vid, fid)
	woken := h.watch(id)
	defer h.unwatch(id, woken)
	end := time.NewTimer(max(0, wait))
	defer end.Stop()
	poll := time.NewTicker(pollEvery)
	defer poll.Stop()
	for last := wait <= 0; ; {
		bctx, cancel := boardCtx(ctx)
		o, done, err := h.board.Result(bctx, vid, fid)
		cancel()
		switch {
		case errors.Is(err, ErrNotPending):
			return api.VerifyResult{}, false, core.ErrVerificationClosed
		case err != nil:
			return api.VerifyResult{}, false, unavailable("reading the push's outcome", err)
		case done:
			return o.Result, true, nil
		case last:
			return api.VerifyResult{}, false, nil
		}
		select {
		case <-woken:
		case <-poll.C:
		case <-end.C:
			last = true
		case <-ctx.Done():
			return api.VerifyResult{}, false, ctx.Err()
		case <-h.stop:
			return api.VerifyResult{}, false, fmt.Errorf("%w: keyfleetd is stopping; the push waits on, finish it through another keyfleetd", core.ErrUnavailable)
		}
	}
}

// watch returns a channel that gets a value when id is decided.
func (h *Hub) watch(id string) chan struct{} {
	c := make(chan struct{}, 1)
	h.mu.Lock()
	h.watchers[id] = append(h.watchers[id], c)
	h.mu.Unlock()
	return c
}

func (h *Hub) unwatch(id string, c chan struct{}) {
	h.mu.Lock()
	defer h.mu.Unlock()
	list := h.watchers[id]
	for i, x := range list {
		if x == c {
			list = append(list[:i], list[i+1:]...)
			break
		}
	}
	if len(list) == 0 {
		delete(h.watchers, id)
	} else {
		h.watchers[id] = list
	}
}

func wake(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// onListening runs when the board (re)starts listening: notices may have
// been missed, so streams end (their companions reconnect and list what
// is pending) and waiters look again.
func (h *Hub) onListening() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, list := range h.streams {
		for _, s := range list {
			s.end()
		}
	}
	for _, list := range h.watchers {
		for _, c := range list {
			wake(c)
		}
	}
}

// onNotice forwards a board's notice to the streams and waiters here.
func (h *Hub) onNotice(n BoardNotice) {
	h.mu.Lock()
	if n.Decided {
		for _, c := range h.watchers[n.ID] {
			wake(c)
		}
	}
	fw, sent := h.forwarded[n.ID]
	delete(h.forwarded, n.ID)
	idle := len(h.streams) == 0 || !n.Decided && n.Tag != "" && h.tagged[n.Tag] == ""
	h.mu.Unlock()
	if idle || (n.Decided && !sent) {
		return
	}
	ctx, cancel := boardCtx(context.Background())
	p, o, err := h.board.Lookup(ctx, n.ID)
	cancel()
	switch {
	case errors.Is(err, ErrNotPending):
		return
	case err != nil:
		h.log.Warn("push: looking up a push another keyfleetd filed", "err", err)
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if n.Decided {
		outcome := "closed"
		if o != nil {
			outcome = o.Outcome
		}
		for _, s := range h.streams[fw.p.FactorID] {
			s.send(closedEvent(fw.p, outcome))
		}
		return
	}
	if o != nil || len(h.streams[p.FactorID]) == 0 {
		return
	}
	h.forwarded[n.ID] = forward{p: p}
	for _, s := range h.streams[p.FactorID] {
		s.send(Event{Type: EventPush, Data: p.Delivery})
	}
}

// subscribeShared is Subscribe with a Board: the stream is open before
// the pending pushes are listed, so none falls between.
func (h *Hub) subscribeShared(factorID string) (*Stream, [][]byte, func()) {
	s, _, done := h.subscribe(factorID)
	items, err := h.waitingShared(factorID)
	if err != nil {
		s.end() // the companion reconnects and asks again
	}
	return s, items, done
}

// waitingShared lists the deliveries pending for factorID on the board,
// and notes them as forwarded here (for their closed events).
func (h *Hub) waitingShared(factorID string) ([][]byte, error) {
	ctx, cancel := boardCtx(context.Background())
	defer cancel()
	ps, err := h.board.Waiting(ctx, factorID, h.now())
	if err != nil {
		h.log.Warn("push: listing the pushes pending for a companion", "factor_id", factorID, "err", err)
		return nil, err
	}
	out := make([][]byte, len(ps))
	h.mu.Lock()
	defer h.mu.Unlock()
	for i, p := range ps {
		out[i] = p.Delivery
		h.forwarded[h.board.ID(p.VerificationID, p.FactorID)] = forward{p: p}
	}
	return out, nil
}

func (h *Hub) kickSweep() {
	select {
	case h.kick <- struct{}{}:
	default:
	}
}

// sweeper closes the pushes past their deadline, on every keyfleetd.
func (h *Hub) sweeper(ctx context.Context) {
	t := time.NewTicker(sweepEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-h.kick:
		}
		h.sweep(ctx)
	}
}

// sweep closes what the board says is due, and forgets forwarded pushes
// long past their deadline (their closed notice was missed).
func (h *Hub) sweep(ctx context.Context) {
	svc := h.service()
	if svc == nil {
		return
	}
	now := h.now()
	bctx, cancel := boardCtx(ctx)
	due, err := h.board.Due(bctx, now, now.Add(-staleClaim), 100)
	cancel()
	if err != nil {
		h.log.Warn("push: looking for pushes past their deadline", "err", err)
	}
	for _, p := range due {
		expired, err := svc.ExpireOutOfBand(ctx, p.Ticket, p.FactorID)
		if err != nil {
			h.log.Warn("push: recording an unanswered push", "factor_id", p.FactorID, "err", err)
		}
		if expired {
			h.metrics.answers.WithLabelValues("unanswered").Inc()
		}
		h.decideShared(p, api.VerifyResult{UserID: p.UserID, FactorID: p.FactorID, Kind: p.Kind}, "expired")
	}
	h.mu.Lock()
	for id, fw := range h.forwarded {
		if now.Sub(fw.p.Deadline) > staleClaim {
			delete(h.forwarded, id)
		}
	}
	h.mu.Unlock()
	if len(due) == 100 {
		h.kickSweep()
	}
	bctx, cancel = boardCtx(ctx)
	n, err := h.board.Count(bctx, now)
	cancel()
	if err == nil {
		h.boardPending.Store(int64(n))
	}
}
