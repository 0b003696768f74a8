package client

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/keyfleet/keyfleet/api"
)

// DeviceHeader is the header a push companion's requests carry (the
// same as plugins/push.DeviceHeader).
const DeviceHeader = "Keyfleet-Device"

// DeviceSigner makes the DeviceHeader value of one request: a push
// companion's device key signing the method, path and time
// (*push.Device from plugins/push implements it).
type DeviceSigner interface {
	Authorization(method, path string, now time.Time) (string, error)
}

// WithDevice returns a copy of c that authenticates as a push companion:
// each request carries a DeviceHeader that d signs, and no token.
func (c *Client) WithDevice(d DeviceSigner) *Client {
	cp := *c
	cp.device, cp.token, cp.proof = d, "", ""
	return &cp
}

// PushEvent is one event on a companion's stream: "push" with a
// delivery (plugins/push.Delivery), or "closed" with the push that no
// longer waits.
type PushEvent struct {
	Type string
	Data json.RawMessage
}

// PushStream opens GET /v1/push/stream (a WithDevice client) and calls fn
// with each event until ctx ends, fn returns an error, or the stream
// breaks; it returns why. A stream that stays silent for longer than
// idle (three keep-alives) is taken as broken; reconnect then.
func (c *Client) PushStream(ctx context.Context, idle time.Duration, fn func(PushEvent) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	resp, err := c.send(ctx, http.MethodGet, "/v1/push/stream", nil, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-ctx.Done():
				return
			}
		}
	}()
	var ev PushEvent
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				return errors.New("the push stream ended")
			}
			if done, err := sseLine(&ev, line, fn); done || err != nil {
				return err
			}
		case <-time.After(idle):
			return fmt.Errorf("the push stream was silent for %s", idle)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// sseLine adds one line of a server-sent event to ev and calls fn at the
// blank line that ends it.
func sseLine(ev *PushEvent, line string, fn func(PushEvent) error) (bool, error) {
	switch {
	case line == "":
		if ev.Type != "" {
			err := fn(*ev)
			*ev = PushEvent{}
			return err != nil, err
		}
	case strings.HasPrefix(line, "event: "):
		ev.Type = strings.TrimPrefix(line, "event: ")
	case strings.HasPrefix(line, "data: "):
		ev.Data = json.RawMessage(strings.TrimPrefix(line, "data: "))
	}
	return false, nil
}

// PendingPushes calls GET /v1/push/pending (a WithDevice client): the
// deliveries waiting for this companion, waiting up to wait for one.
func (c *Client) PendingPushes(ctx context.Context, wait time.Duration) ([]json.RawMessage, error) {
	var out struct {
		Items []json.RawMessage `json:"items"`
	}
	q := url.Values{}
	if wait > 0 {
		q.Set("wait", wait.String())
	}
	_, err := c.do(ctx, http.MethodGet, "/v1/push/pending", q, nil, &out)
	return out.Items, err
}

// AnswerPush calls POST /v1/push/answer (a WithDevice client) with a
// signed answer (plugins/push.Answer).
func (c *Client) AnswerPush(ctx context.Context, answer any) (api.PushOutcome, error) {
	var out api.PushOutcome
	_, err := c.do(ctx, http.MethodPost, "/v1/push/answer", nil, answer, &out)
	return out, err
}
