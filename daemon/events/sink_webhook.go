package events

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// Webhook headers. The signature scheme is documented in docs/events.md.
const (
	HeaderSignature = "X-Keyfleet-Signature"
	// HeaderDelivery names a batch: "<sink>:<first seq>-<last seq>". It is
	// the same on every retry, so receivers can de-duplicate.
	HeaderDelivery = "X-Keyfleet-Delivery"
)

// WebhookBatch is the body of a webhook POST.
type WebhookBatch struct {
	Schema   string  `json:"schema"`
	Sink     string  `json:"sink"`
	Delivery string  `json:"delivery"`
	Events   []Event `json:"events"`
}

// Sign returns the X-Keyfleet-Signature value for body sent at t:
// "t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<unix seconds>." ‖ body)>".
func Sign(secret []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac(secret, ts, body))
}

func mac(secret []byte, ts string, body []byte) []byte {
	h := hmac.New(sha256.New, secret)
	h.Write([]byte(ts))
	h.Write([]byte{'.'})
	h.Write(body)
	return h.Sum(nil)
}

// Errors of [VerifySignature].
var (
	ErrBadSignature   = errors.New("webhook signature does not match")
	ErrStaleSignature = errors.New("webhook signature timestamp is outside the tolerance")
)

// VerifySignature checks a X-Keyfleet-Signature header against body, as a
// receiver written in Go would. It accepts the header when any v1 value
// matches and t is within tolerance of now. It returns ErrBadSignature or
// ErrStaleSignature (wrapped).
func VerifySignature(secret []byte, header string, body []byte, now time.Time, tolerance time.Duration) error {
	var ts string
	var sigs [][]byte
	for part := range strings.SplitSeq(header, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			if b, err := hex.DecodeString(v); err == nil {
				sigs = append(sigs, b)
			}
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || len(sigs) == 0 {
		return fmt.Errorf("%w: malformed header", ErrBadSignature)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("%w: signed %s ago", ErrStaleSignature, d.Round(time.Second))
	}
	want := mac(secret, ts, body)
	for _, s := range sigs {
		if hmac.Equal(s, want) {
			return nil
		}
	}
	return ErrBadSignature
}

// webhookSink POSTs each batch as one signed JSON body.
type webhookSink struct {
	name   string
	url    string
	shown  string // the URL without credentials or query, for errors
	secret []byte
	client *http.Client
	now    func() time.Time
}

func newWebhookSink(name string, cfg WebhookConfig, o Options) (*webhookSink, error) {
	secret := []byte(cfg.Secret)
	if cfg.SecretFile != "" {
		b, err := os.ReadFile(cfg.SecretFile)
		if err != nil {
			return nil, fmt.Errorf("reading webhook secret file: %w", err)
		}
		if secret = bytes.TrimSpace(b); len(secret) < 16 {
			return nil, fmt.Errorf("webhook secret file %s holds fewer than 16 bytes", cfg.SecretFile)
		}
	}
	tc, err := clientTLS(cfg.TLS, cfg.CAFile, "")
	if err != nil {
		return nil, err
	}
	tr := &http.Transport{
		Proxy: http.ProxyFromEnvironment, TLSClientConfig: tc, ForceAttemptHTTP2: true,
		TLSHandshakeTimeout: cfg.Timeout.Duration, ResponseHeaderTimeout: cfg.Timeout.Duration,
		MaxIdleConnsPerHost: 2, IdleConnTimeout: 90 * time.Second,
	}
	return &webhookSink{
		name: name, url: cfg.URL, shown: redactURL(cfg.URL), secret: secret, now: o.Now,
		client: &http.Client{
			Transport: tr, Timeout: cfg.Timeout.Duration,
			// A redirect would re-send the events elsewhere: treat it as a failure.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}, nil
}

func (s *webhookSink) deliver(ctx context.Context, batch []Event) error {
	id := fmt.Sprintf("%s:%d-%d", s.name, batch[0].Seq, batch[len(batch)-1].Seq)
	body, err := json.Marshal(WebhookBatch{Schema: Schema, Sink: s.name, Delivery: id, Events: batch})
	if err != nil {
		return fmt.Errorf("encoding webhook batch: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("webhook %s: %w", s.shown, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "keyfleetd")
	req.Header.Set(HeaderDelivery, id)
	req.Header.Set(HeaderSignature, Sign(s.secret, s.now(), body))
	resp, err := s.client.Do(req)
	if err != nil {
		return fmt.Errorf("webhook %s: %w", s.shown, unwrapURLError(err))
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("webhook %s answered %s", s.shown, resp.Status)
	}
	return nil
}

// unwrapURLError drops net/http's *url.Error wrapper, whose message repeats
// the full URL (query included).
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func (s *webhookSink) close() error {
	s.client.CloseIdleConnections()
	return nil
}
