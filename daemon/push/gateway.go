package push

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/keyfleet/keyfleet/daemon/core"
)

// Notice is what a gateway carries to wake a companion: who is signing in
// to what, from where, when, and until when to answer. It carries no
// number and no verification id: the companion fetches the push itself
// over its authenticated channel, and only its key can answer.
type Notice struct {
	Type        string    `json:"type"`   // "push"
	Device      string    `json:"device"` // the push factor's id
	User        string    `json:"user"`
	Application string    `json:"application,omitempty"`
	Address     string    `json:"address,omitempty"`
	Time        time.Time `json:"time"`
	Deadline    time.Time `json:"deadline"`
}

func noticeOf(p core.Pending) Notice {
	return Notice{Type: "push", Device: p.FactorID, User: p.Username, Application: p.Application, Address: p.Address,
		Time: p.Time, Deadline: p.Deadline}
}

// Gateway hands notices to a relay.
type Gateway interface {
	Name() string
	Publish(ctx context.Context, n Notice) error
}

// HeaderSignature carries a webhook notice's signature:
// "t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">".
const HeaderSignature = "X-Keyfleet-Push-Signature"

// SignNotice returns the HeaderSignature value for body sent at t.
func SignNotice(secret []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts + "."))
	m.Write(body)
	return "t=" + ts + ",v1=" + hex.EncodeToString(m.Sum(nil))
}

type webhook struct {
	name, url string
	secret    []byte
	client    *http.Client
	now       func() time.Time
}

func (w *webhook) Name() string { return w.name }

func (w *webhook) Publish(ctx context.Context, n Notice) error {
	body, _ := json.Marshal(n)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(HeaderSignature, SignNotice(w.secret, w.now(), body))
	return send(w.client, req)
}

type ntfy struct {
	name, base, prefix, token, click string
	client                           *http.Client
}

func (g *ntfy) Name() string { return g.name }

// Publish posts the notice to the device's topic, as ntfy's publishing
// API takes it: the message as the body, the rest in headers.
func (g *ntfy) Publish(ctx context.Context, n Notice) error {
	msg := n.User + " is signing in"
	if n.Application != "" {
		msg += " to " + n.Application
	}
	if n.Address != "" {
		msg += " from " + n.Address
	}
	msg += ". Open keyfleet to answer before " + n.Deadline.UTC().Format("15:04:05") + " UTC."
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, g.base+"/"+g.prefix+n.Device, strings.NewReader(msg))
	if err != nil {
		return err
	}
	req.Header.Set("Title", "Sign-in request")
	req.Header.Set("Priority", "high")
	req.Header.Set("Tags", "lock")
	if g.click != "" {
		req.Header.Set("Click", g.click)
	}
	if g.token != "" {
		req.Header.Set("Authorization", "Bearer "+g.token)
	}
	return send(g.client, req)
}

func send(c *http.Client, req *http.Request) error {
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("the relay answered %s", resp.Status)
	}
	return nil
}

// gatewayQueue bounds the notices waiting for the gateways; beyond it
// they are dropped (counted): a relay that is down must not hold pushes
// up, which go over the companions' channels anyway.
const gatewayQueue = 1024

// gateways fans notices out to the configured relays from one worker
// per relay.
type gateways struct {
	list    []Gateway
	queues  []chan Notice
	log     *slog.Logger
	metrics *metrics
	wg      sync.WaitGroup
	once    sync.Once
}

func newGateways(cfgs []GatewayConfig, log *slog.Logger, m *metrics) (*gateways, error) {
	g := &gateways{log: log, metrics: m}
	for _, c := range cfgs {
		gw, err := buildGateway(c)
		if err != nil {
			return nil, fmt.Errorf("push.gateways %s: %w", c.Name, err)
		}
		g.add(gw, c.Timeout.Duration)
	}
	return g, nil
}

func buildGateway(c GatewayConfig) (Gateway, error) {
	client := &http.Client{Timeout: c.Timeout.Duration}
	if c.Type == TypeWebhook {
		secret, err := c.secret()
		return &webhook{name: c.Name, url: c.URL, secret: secret, client: client, now: time.Now}, err
	}
	token, err := readOptional(c.Token, c.TokenFile, "token")
	return &ntfy{name: c.Name, base: strings.TrimRight(c.URL, "/"), prefix: c.TopicPrefix, token: token, click: c.Click, client: client}, err
}

// add starts gw's worker.
func (g *gateways) add(gw Gateway, timeout time.Duration) {
	q := make(chan Notice, gatewayQueue)
	g.list, g.queues = append(g.list, gw), append(g.queues, q)
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		for n := range q {
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			err := gw.Publish(ctx, n)
			cancel()
			if err != nil {
				g.metrics.gwFailed.WithLabelValues(gw.Name()).Inc()
				g.log.Warn("push: a gateway did not take a notice", "gateway", gw.Name(), "factor_id", n.Device, "err", err)
				continue
			}
			g.metrics.gwSent.WithLabelValues(gw.Name()).Inc()
		}
	}()
}

// notify queues n for every gateway; called with the hub's lock held, so
// it never blocks.
func (g *gateways) notify(n Notice) {
	for i, q := range g.queues {
		select {
		case q <- n:
		default:
			g.metrics.gwFailed.WithLabelValues(g.list[i].Name()).Inc()
		}
	}
}

func (g *gateways) close() {
	g.once.Do(func() {
		for _, q := range g.queues {
			close(q)
		}
	})
	g.wg.Wait()
}
