package loadgen

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
)

// Client sends API requests to one keyfleetd over keep-alive HTTPS
// connections. It is safe for concurrent use; each request in flight
// holds one connection.
type Client struct {
	base   string
	token  string
	header http.Header // sent with every request besides the token
	hc     *http.Client
}

// ClientConfig says where keyfleetd is.
type ClientConfig struct {
	// Server is the daemon's base URL (https://127.0.0.1:8443). Required.
	Server string
	// CAFile is the PEM certificate to trust for it (DATA/tls/cert.pem).
	// Required.
	CAFile string
	// Token is the bearer token sent with every request.
	Token string
	// Conns is how many connections are kept open (default 16).
	Conns int
	// Timeout bounds one request (default 5m: a list over a large store
	// can take that long before the store bounds its work).
	Timeout time.Duration
}

// NewClient reads the CA file and makes a Client.
func NewClient(cfg ClientConfig) (*Client, error) {
	if cfg.Server == "" || cfg.CAFile == "" {
		return nil, errors.New("loadgen: a server URL and a CA file are required")
	}
	pem, err := os.ReadFile(cfg.CAFile)
	if err != nil {
		return nil, fmt.Errorf("loadgen: reading the daemon's certificate: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("loadgen: %s holds no PEM certificate", cfg.CAFile)
	}
	if cfg.Conns <= 0 {
		cfg.Conns = 16
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Minute
	}
	tr := &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		MaxIdleConns:        cfg.Conns + 4,
		MaxIdleConnsPerHost: cfg.Conns + 4,
		IdleConnTimeout:     time.Minute,
		DisableCompression:  true,
	}
	return &Client{base: strings.TrimRight(cfg.Server, "/"), token: cfg.Token, hc: &http.Client{Transport: tr, Timeout: cfg.Timeout}}, nil
}

// WithToken is a copy of c that sends another token over the same
// connections.
func (c *Client) WithToken(token string) *Client {
	cp := *c
	cp.token = token
	return &cp
}

// WithHeader is a copy of c that also sends the header k: v.
func (c *Client) WithHeader(k, v string) *Client {
	cp := *c
	cp.header = c.header.Clone()
	if cp.header == nil {
		cp.header = http.Header{}
	}
	cp.header.Set(k, v)
	return &cp
}

// StatusError is an answer outside 2xx.
type StatusError struct {
	Method, Path string
	Status       int
	Body         string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("%s %s: %d %s", e.Method, e.Path, e.Status, strings.TrimSpace(e.Body))
}

// Do sends one request with in as its JSON body (nil: none) and decodes a
// 2xx answer into out (nil: discarded). Any other answer is a
// *StatusError.
func (c *Client) Do(ctx context.Context, method, path string, in, out any) error {
	var body []byte
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = b
	}
	return c.DoRaw(ctx, method, path, body, out)
}

// DoRaw is Do with a body already encoded (nil: none).
func (c *Client) DoRaw(ctx context.Context, method, path string, in []byte, out any) error {
	var body io.Reader
	if in != nil {
		body = bytes.NewReader(in)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return err
	}
	for k, v := range c.header {
		req.Header[k] = v
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return &StatusError{Method: method, Path: path, Status: resp.StatusCode, Body: string(msg)}
	}
	if out == nil {
		_, err = io.Copy(io.Discard, resp.Body)
		return err
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// WaitReady polls GET /readyz until it answers 200 or ctx ends.
func (c *Client) WaitReady(ctx context.Context) error {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		err := c.Do(ctx, "GET", "/readyz", nil, nil)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("keyfleetd did not become ready: %w (last: %v)", ctx.Err(), err)
		case <-t.C:
		}
	}
}

// Connect opens n connections at once (n requests for /healthz in
// flight together) and keeps them for the requests that follow, as an
// application does: a run measured after it times requests, not TLS
// handshakes. It returns how long that took.
func (c *Client) Connect(ctx context.Context, n int) (time.Duration, error) {
	start := time.Now()
	errs := make(chan error, n)
	for range n {
		go func() { errs <- c.Do(ctx, "GET", "/healthz", nil, nil) }()
	}
	var first error
	for range n {
		if err := <-errs; err != nil && first == nil {
			first = fmt.Errorf("opening a connection: %w", err)
		}
	}
	return time.Since(start), first
}
