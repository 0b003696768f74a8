package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/core"
	"github.com/keyfleet/keyfleet/daemon/foreground"
	"github.com/keyfleet/keyfleet/daemon/push"
)

// PushAPI is what the companions' routes need of the push hub
// (*push.Hub).
type PushAPI interface {
	Authenticate(r *http.Request) (core.Factor, error)
	Subscribe(factorID string) (*push.Stream, [][]byte, func())
	Pending(factorID string) [][]byte
	Answer(ctx context.Context, f core.Factor, verificationID, factorID string, body []byte) (core.OutOfBandOutcome, error)
	DeviceStillActive(ctx context.Context, id string) bool
	KeepAlive() time.Duration
	Stopping() <-chan struct{}
}

// The companions' routes are authenticated by the device key, not a
// token: the Route's action says so.
const deviceAuth core.Action = "device"

// maxPendingWait bounds GET /v1/push/pending's long poll.
const maxPendingWait = time.Minute

// registerPush adds the companions' routes.
func (h *Handler) registerPush(p PushAPI) {
	if p == nil {
		return
	}
	h.device("GET /v1/push/stream", p, func(w http.ResponseWriter, r *http.Request, f core.Factor) error {
		return streamPushes(w, r, p, f)
	})
	h.device("GET /v1/push/pending", p, func(w http.ResponseWriter, r *http.Request, f core.Factor) error {
		return pendingPushes(w, r, p, f)
	})
	h.device("POST /v1/push/answer", p, func(w http.ResponseWriter, r *http.Request, f core.Factor) error {
		return answerPush(w, r, p, f)
	})
}

// device registers a route for companions.
func (h *Handler) device(pattern string, p PushAPI, fn func(w http.ResponseWriter, r *http.Request, f core.Factor) error) {
	h.routes = append(h.routes, Route{pattern, deviceAuth})
	h.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		f, err := p.Authenticate(r)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		if info, ok := r.Context().Value(infoKey{}).(*reqInfo); ok {
			info.principal = "device:" + f.ID
		}
		if err := fn(w, r, f); err != nil {
			h.fail(w, r, err)
		}
	})
}

// streamPushes serves a companion's channel as server-sent events: the
// pushes pending now, then each new one ("push"), and "closed" when one
// no longer waits; a comment line every keep-alive. The stream ends when
// the factor stops being active, a newer stream of the same device
// replaces it, or keyfleetd stops.
func streamPushes(w http.ResponseWriter, r *http.Request, p PushAPI, f core.Factor) error {
	s, pending, done := p.Subscribe(f.ID)
	defer done()
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	foreground.Release(r.Context()) // a stream waits for pushes: no sweep waits for it
	write := func(text string) bool {
		rc.SetWriteDeadline(time.Now().Add(30 * time.Second))
		_, err := io.WriteString(w, text)
		return err == nil && rc.Flush() == nil
	}
	if !write("retry: 3000\n\n") {
		return nil
	}
	for _, d := range pending {
		if !write(sse(push.EventPush, d)) {
			return nil
		}
	}
	if !write(sse(push.EventReady, fmt.Appendf(nil, `{"pending":%d}`, len(pending)))) {
		return nil
	}
	tick := time.NewTicker(p.KeepAlive())
	defer tick.Stop()
	for n := 1; ; n++ {
		select {
		case ev := <-s.Events():
			if !write(sse(ev.Type, ev.Data)) {
				return nil
			}
		case <-tick.C:
			if (n%6 == 0 && !p.DeviceStillActive(r.Context(), f.ID)) || !write(": keep-alive\n\n") {
				return nil
			}
		case <-s.Ended():
			return nil
		case <-p.Stopping():
			return nil
		case <-r.Context().Done():
			return nil
		}
	}
}

func sse(event string, data []byte) string {
	return "event: " + event + "\ndata: " + string(data) + "\n\n"
}

// pendingPushes answers the deliveries waiting for the device, waiting
// up to ?wait= (at most a minute) for one when there is none: a long poll
// for companions that cannot keep a stream.
func pendingPushes(w http.ResponseWriter, r *http.Request, p PushAPI, f core.Factor) error {
	var wait time.Duration
	if v := r.URL.Query().Get("wait"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 || d > maxPendingWait {
			return &apiError{http.StatusBadRequest, probBadRequest, "Bad query parameter", fmt.Sprintf("wait=%q must be a duration up to %s, like 25s", v, maxPendingWait)}
		}
		wait = d
	}
	items := p.Pending(f.ID)
	if len(items) == 0 && wait > 0 {
		foreground.Release(r.Context()) // a long poll waits for a push: no sweep waits for it
		items = waitForPush(r.Context(), p, f.ID, wait)
	}
	out := make([]json.RawMessage, len(items))
	for i, d := range items {
		out[i] = d
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": out})
	return nil
}

// waitForPush waits up to wait for a push to factorID and returns what
// is pending then.
func waitForPush(ctx context.Context, p PushAPI, factorID string, wait time.Duration) [][]byte {
	s, items, done := p.Subscribe(factorID)
	defer done()
	t := time.NewTimer(wait)
	defer t.Stop()
	for len(items) == 0 {
		select {
		case ev := <-s.Events():
			if ev.Type == push.EventPush {
				items = append(items, ev.Data)
			}
		case <-t.C:
			return nil
		case <-s.Ended():
			return nil
		case <-p.Stopping():
			return nil
		case <-ctx.Done():
			return nil
		}
	}
	return items
}

// answerPush takes a companion's signed answer to one of its pushes.
func answerPush(w http.ResponseWriter, r *http.Request, p PushAPI, f core.Factor) error {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return &apiError{http.StatusRequestEntityTooLarge, probBodyTooLarge, "Body too large", "the answer is too large"}
	}
	var ids struct {
		VerificationID string `json:"verification_id"`
		FactorID       string `json:"factor_id"`
	}
	if err := json.Unmarshal(body, &ids); err != nil {
		return &apiError{http.StatusBadRequest, probInvalidJSON, "Malformed JSON", "the answer is not a JSON object; send plugins/push's Answer"}
	}
	out, err := p.Answer(r.Context(), f, ids.VerificationID, ids.FactorID, body)
	if err != nil {
		return err
	}
	res := api.PushOutcome{OK: out.Result.OK, Outcome: "refused", Reason: out.Reason}
	switch {
	case out.Result.OK:
		res.Outcome = "approved"
	case out.Reported:
		res.Outcome = "reported"
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}
