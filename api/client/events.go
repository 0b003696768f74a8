package client

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/keyfleet/keyfleet/api"
)

// EventSinks calls GET /v1/events/sinks.
func (c *Client) EventSinks(ctx context.Context) ([]api.SinkStatus, error) {
	var out struct {
		Items []api.SinkStatus `json:"items"`
	}
	_, err := c.do(ctx, http.MethodGet, "/v1/events/sinks", nil, nil, &out)
	return out.Items, err
}

// ReplaySink calls POST /v1/events/sinks/{name}/replay: the sink delivers
// again from sequence number from.
func (c *Client) ReplaySink(ctx context.Context, name string, from uint64) (api.SinkStatus, error) {
	var raw json.RawMessage
	_, err := c.do(ctx, http.MethodPost, p("/v1/events/sinks/%s/replay", name), nil, map[string]uint64{"from": from}, &raw)
	var st api.SinkStatus
	if err == nil && len(raw) > 0 {
		err = json.Unmarshal(raw, &st)
	}
	return st, err
}
