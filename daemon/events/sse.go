package events

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/audit"
	"github.com/keyfleet/keyfleet/daemon/foreground"
)

// sseScan is how many audit records one pass of a stream reads.
const sseScan = 256

// sseHandler serves GET /v1/events as server-sent events (the HTML
// Living Standard, "Server-sent events"): each event is
//
//	id: <seq>
//	event: audit
//	data: <Event JSON>
//
// A client resumes with ?since=SEQ or the Last-Event-ID header (which wins,
// being what a reconnecting EventSource sends); without either the stream
// starts at the head, with live events only.
type sseHandler struct{ m *Manager }

func newSSEHandler(m *Manager) *sseHandler { return &sseHandler{m: m} }

// errBadSSERequest is wrapped by the errors of parseSSE.
var errBadSSERequest = errors.New("bad event stream request")

type sseRequest struct {
	after uint64
	match matcher
}

func (h *sseHandler) parse(r *http.Request) (sseRequest, error) {
	head := h.m.o.Source.AuditHead().Seq
	req := sseRequest{after: head}
	q := r.URL.Query()
	from, name := q.Get("since"), "since"
	if id := r.Header.Get("Last-Event-ID"); id != "" {
		from, name = id, "Last-Event-ID"
	}
	if from != "" {
		n, err := strconv.ParseUint(from, 10, 64)
		if err != nil {
			return req, fmt.Errorf("%w: %s %q is not a sequence number", errBadSSERequest, name, from)
		}
		if n > head {
			return req, fmt.Errorf("%w: %s %d is past the log head %d", errBadSSERequest, name, n, head)
		}
		req.after = n
	}
	f := Filter{Actions: list(q["action"]), Severities: list(q["severity"]), Groups: list(q["group"])}
	if err := f.validate(); err != nil {
		return req, fmt.Errorf("%w: %w", errBadSSERequest, err)
	}
	if len(f.Groups) > 0 && h.m.o.Groups == nil {
		return req, fmt.Errorf("%w: this daemon cannot filter on groups", errBadSSERequest)
	}
	req.match = matcher{f: f, groups: h.m.o.Groups}
	return req, nil
}

// list splits repeated and comma-separated query values.
func list(vs []string) []string {
	var out []string
	for _, v := range vs {
		for s := range strings.SplitSeq(v, ",") {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
	}
	return out
}

func (h *sseHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		writeProblem(w, http.StatusMethodNotAllowed, "method-not-allowed", "Method not allowed", "use GET")
		return
	}
	req, err := h.parse(r)
	if err != nil {
		writeProblem(w, http.StatusBadRequest, "validation-failed", "The request is not valid", err.Error())
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no") // tell reverse proxies not to buffer the stream
	w.WriteHeader(http.StatusOK)
	foreground.Release(r.Context()) // a stream waits for events: no sweep waits for it
	h.m.metrics.sseClients.Inc()
	defer h.m.metrics.sseClients.Dec()
	s := &sseStream{h: h, w: w, rc: http.NewResponseController(w), req: req}
	if err := s.run(r.Context()); err != nil && r.Context().Err() == nil {
		h.m.log.Debug("event stream ended", "err", err, "after", s.req.after)
	}
}

func writeProblem(w http.ResponseWriter, status int, typ, title, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(api.Problem{Type: "/problems/" + typ, Title: title, Status: status, Detail: detail})
}

// sseStream is one client's stream.
type sseStream struct {
	h   *sseHandler
	w   http.ResponseWriter
	rc  *http.ResponseController
	req sseRequest
	buf bytes.Buffer
}

func (s *sseStream) run(ctx context.Context) error {
	keep := time.NewTicker(s.h.m.cfg.SSE.KeepAlive.Duration)
	defer keep.Stop()
	s.buf.WriteString("retry: 2000\n: keyfleet events after " + strconv.FormatUint(s.req.after, 10) + "\n\n")
	if err := s.flush(); err != nil {
		return err
	}
	for {
		woken := s.h.m.wake.wait()
		more, err := s.pass(ctx)
		if err != nil {
			return err
		}
		if more {
			continue
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.h.m.closing:
			return nil
		case <-woken:
		case <-keep.C:
			s.buf.WriteString(": keep-alive\n\n")
			if err := s.flush(); err != nil {
				return err
			}
		}
	}
}

// pass sends what follows the client's position, up to sseScan records,
// and reports whether more may be waiting.
func (s *sseStream) pass(ctx context.Context) (bool, error) {
	n := 0
	err := s.h.m.o.Source.AuditScan(ctx, s.req.after, func(key uint64, rec audit.Record) (bool, error) {
		ev, err := FromRecord(rec)
		if err != nil {
			return false, err
		}
		ev.SetEpoch(s.h.m.epochOf(key))
		ok, err := s.req.match.match(ctx, ev)
		if err != nil {
			return false, err
		}
		if ok {
			s.write(ev)
		}
		s.req.after, n = key, n+1
		return n < sseScan, nil
	})
	if err != nil {
		return false, err
	}
	if s.buf.Len() > 0 {
		return n == sseScan, s.flush()
	}
	return n == sseScan, nil
}

func (s *sseStream) write(ev Event) {
	s.buf.WriteString("id: ")
	s.buf.WriteString(strconv.FormatUint(ev.Seq, 10))
	s.buf.WriteString("\nevent: audit\ndata: ")
	enc := json.NewEncoder(&s.buf) // one line: JSON escapes newlines inside strings
	enc.SetEscapeHTML(false)
	_ = enc.Encode(ev) // an Event always encodes
	s.buf.WriteString("\n")
	s.h.m.metrics.sseSent.Inc()
}

func (s *sseStream) flush() error {
	_ = s.rc.SetWriteDeadline(time.Now().Add(s.h.m.cfg.SSE.WriteTimeout.Duration)) // unsupported by some writers
	_, err := s.w.Write(s.buf.Bytes())
	s.buf.Reset()
	if err == nil {
		err = s.rc.Flush()
	}
	return err
}
