package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/keyfleet/keyfleet/daemon/core"
	"github.com/keyfleet/keyfleet/daemon/events"
)

// EventsAPI is what the API needs of the event sinks.
type EventsAPI interface {
	SSEHandler() http.Handler
	Status() []events.SinkStatus
	Replay(ctx context.Context, sink string, from uint64) error
}

// replayRequest is the body of POST /v1/events/sinks/{name}/replay.
type replayRequest struct {
	From uint64 `json:"from"`
}

// registerEvents adds the live event stream and the sinks' status.
func (h *Handler) registerEvents(ev EventsAPI) {
	if ev == nil {
		return
	}
	h.routeStream("GET /v1/events", core.ReadAudit, func(w http.ResponseWriter, r *http.Request, _ core.Principal) error {
		ev.SSEHandler().ServeHTTP(w, r)
		return nil
	})
	h.route("GET /v1/events/sinks", core.ReadAudit, func(r *http.Request, _ core.Principal) (int, any, error) {
		return http.StatusOK, map[string]any{"items": ev.Status()}, nil
	})
	h.route("POST /v1/events/sinks/{name}/replay", core.ReplayEvents, func(r *http.Request, p core.Principal) (int, any, error) {
		var in replayRequest
		if err := decode(r, &in, false); err != nil {
			return 0, nil, err
		}
		name := r.PathValue("name")
		if err := ev.Replay(r.Context(), name, in.From); err != nil {
			return 0, nil, replayError(name, err)
		}
		if err := h.svc.RecordAction(r.Context(), p, "events.replay", "event_sink", name,
			map[string]string{"from_seq": fmt.Sprint(in.From)}); err != nil {
			return 0, nil, err
		}
		for _, st := range ev.Status() {
			if st.Name == name {
				return http.StatusAccepted, st, nil
			}
		}
		return http.StatusAccepted, nil, nil
	})
}

func replayError(name string, err error) error {
	switch {
	case errors.Is(err, events.ErrUnknownSink):
		return &core.NotFoundError{Kind: "event sink", Ref: name}
	case errors.Is(err, events.ErrBadReplay):
		return &core.ValidationError{Field: "from", Reason: err.Error()}
	}
	return err
}
