package events_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyfleet/keyfleet/daemon/events"
	"github.com/keyfleet/keyfleet/daemon/foreground"
)

// sseClient reads a text/event-stream the way an EventSource does.
type sseClient struct {
	mu       sync.Mutex
	events   []events.Event
	ids      []string
	comments int
	done     chan struct{}
	status   int
}

func openSSE(t testing.TB, url string, header http.Header) *sseClient {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	c := &sseClient{done: make(chan struct{}), status: resp.StatusCode}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		close(c.done)
		return c
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Errorf("Content-Type %q", ct)
	}
	go c.read(t, resp)
	return c
}

func (c *sseClient) read(t testing.TB, resp *http.Response) {
	defer close(c.done)
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	var id, data string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if data != "" {
				var ev events.Event
				if err := json.Unmarshal([]byte(data), &ev); err != nil {
					t.Errorf("SSE data is not an event: %v", err)
				}
				c.mu.Lock()
				c.events, c.ids = append(c.events, ev), append(c.ids, id)
				c.mu.Unlock()
			}
			id, data = "", ""
		case strings.HasPrefix(line, ":"):
			c.mu.Lock()
			c.comments++
			c.mu.Unlock()
		case strings.HasPrefix(line, "id: "):
			id = strings.TrimPrefix(line, "id: ")
		case strings.HasPrefix(line, "data: "):
			data = strings.TrimPrefix(line, "data: ")
		}
	}
}

func (c *sseClient) seqs() []uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := seqsOf(c.events)
	for i, id := range c.ids {
		if id != strconv.FormatUint(out[i], 10) {
			out[i] = 0 // an id that is not the seq shows up as a gap
		}
	}
	return out
}

func (c *sseClient) counts() (events, comments int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.events), c.comments
}

func sseServer(t testing.TB, l *testLog) (*events.Manager, string, func()) {
	cfg := events.Config{SSE: events.SSEConfig{KeepAlive: events.Duration{Duration: 30 * time.Millisecond}}}
	m, stop := run(t, l, cfg, events.Options{})
	srv := httptest.NewServer(m.SSEHandler())
	t.Cleanup(srv.Close)
	return m, srv.URL + "/v1/events", stop
}

func TestSSEStreamsFromASequenceNumberThenLive(t *testing.T) {
	l := newLog(t)
	l.add(t, 5)
	_, url, _ := sseServer(t, l)
	c := openSSE(t, url+"?since=0", nil)
	l.add(t, 300) // more than one pass of the stream
	waitFor(t, "every event and a keep-alive", func() bool { n, k := c.counts(); return n == int(l.head()) && k >= 2 })
	checkComplete(t, c.seqs(), l.head())
}

func TestSSEResumesFromLastEventID(t *testing.T) {
	l := newLog(t)
	l.add(t, 10)
	_, url, _ := sseServer(t, l)
	c := openSSE(t, url+"?since=2", http.Header{"Last-Event-ID": {"7"}})
	waitFor(t, "the events after 7", func() bool { n, _ := c.counts(); return n == 3 })
	if got := c.seqs(); got[0] != 8 || got[2] != 10 {
		t.Errorf("resumed stream = %v, want 8 9 10", got)
	}
}

func TestSSEWithoutAPositionIsLiveOnly(t *testing.T) {
	l := newLog(t)
	l.add(t, 4)
	_, url, _ := sseServer(t, l)
	c := openSSE(t, url+"?severity=notice,high", nil)
	waitFor(t, "the stream to open", func() bool { _, k := c.counts(); return k >= 1 })
	l.add(t, 2)
	waitFor(t, "the live events", func() bool { n, _ := c.counts(); return n == 2 })
	if got := c.seqs(); got[0] != 5 {
		t.Errorf("live stream began at %d, want 5", got[0])
	}
}

func TestSSEFilters(t *testing.T) {
	l := newLog(t)
	l.add(t, 3)
	_, url, _ := sseServer(t, l)
	none := openSSE(t, url+"?since=0&action=factor.*", nil)
	all := openSSE(t, url+"?since=0&action=user.*&action=device.*", nil)
	waitFor(t, "the matching events", func() bool { n, _ := all.counts(); return n == 3 })
	waitFor(t, "a keep-alive on the filtered stream", func() bool { _, k := none.counts(); return k >= 2 })
	if n, _ := none.counts(); n != 0 {
		t.Errorf("a factor.* stream got %d user events", n)
	}
}

func TestSSERefusesBadRequests(t *testing.T) {
	l := newLog(t)
	l.add(t, 2)
	_, url, _ := sseServer(t, l)
	for _, q := range []string{"?since=abc", "?since=3", "?severity=urgent", "?action=[", "?group=admins"} {
		if c := openSSE(t, url+q, nil); c.status != http.StatusBadRequest {
			t.Errorf("GET %s = %d, want 400", q, c.status)
		}
	}
}

func TestSSEStreamsEndWhenTheManagerStops(t *testing.T) {
	l := newLog(t)
	_, url, stop := sseServer(t, l)
	c := openSSE(t, url, nil)
	waitFor(t, "the stream to open", func() bool { _, k := c.counts(); return k >= 1 })
	stop()
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		t.Fatal("the stream outlived the manager")
	}
}

// An open stream waits for events: once it streams, keyfleetd's
// background passes no longer count it as a request being served.
func TestAnOpenStreamDoesNotHoldTheSweepBack(t *testing.T) {
	l := newLog(t)
	l.add(t, 3)
	cfg := events.Config{SSE: events.SSEConfig{KeepAlive: events.Duration{Duration: 30 * time.Millisecond}}}
	m, _ := run(t, l, cfg, events.Options{})
	g := &foreground.Gate{}
	h := m.SSEHandler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, leave := g.Enter(r.Context())
		defer leave()
		h.ServeHTTP(w, r.WithContext(ctx))
	}))
	t.Cleanup(srv.Close)
	c := openSSE(t, srv.URL+"/v1/events?since=0", nil)
	waitFor(t, "the stream's first events", func() bool { n, _ := c.counts(); return n == 3 })
	if n := g.InFlight(); n != 0 {
		t.Fatalf("an open stream is counted as %d request(s) in flight", n)
	}
}
