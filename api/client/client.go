package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/keyfleet/keyfleet/api"
)

// DefaultUserAgent is sent when Config.UserAgent is empty.
const DefaultUserAgent = "keyfleet-client/" + api.Version

// maxBody caps how much of a JSON answer the client reads; maxProblem caps
// an error answer.
const (
	maxBody    = 64 << 20
	maxProblem = 64 << 10
)

// Config says where keyfleetd is and how to authenticate to it. The zero
// value is not usable: Server is required.
type Config struct {
	// Server is the daemon's base URL ("https://keyfleet.example:8443").
	// A bare host:port gets https://. Plain http is refused: the token
	// would travel in clear.
	Server string
	// Token is the bearer token. Empty sends no Authorization header, which
	// only the unauthenticated routes (/healthz, /readyz) accept.
	Token string
	// CAPEM holds PEM certificates to trust for the daemon's TLS
	// certificate instead of the system roots. If nil, the system roots are
	// used.
	CAPEM []byte
	// HTTPClient, if non-nil, sends the requests. When CAPEM is also set,
	// its Transport must be nil or an *http.Transport; a clone of it gets
	// the CA.
	HTTPClient *http.Client
	// UserAgent defaults to DefaultUserAgent.
	UserAgent string
}

// Client talks to one keyfleetd. It is safe for concurrent use.
type Client struct {
	base      *url.URL
	token     string
	userAgent string
	hc        *http.Client
	// proof is the Keyfleet-Proof header value a WithProof copy sends.
	proof string
	// device signs each request of a WithDevice copy (a push companion).
	device DeviceSigner
}

// New validates cfg and returns a Client. It makes no request.
func New(cfg Config) (*Client, error) {
	base, err := parseServer(cfg.Server)
	if err != nil {
		return nil, err
	}
	if strings.ContainsAny(cfg.Token, " \t\r\n") {
		return nil, errors.New("client: token contains white space")
	}
	hc, err := httpClient(cfg.HTTPClient, cfg.CAPEM)
	if err != nil {
		return nil, err
	}
	ua := cfg.UserAgent
	if ua == "" {
		ua = DefaultUserAgent
	}
	return &Client{base: base, token: cfg.Token, userAgent: ua, hc: hc}, nil
}

// Server returns the daemon's base URL.
func (c *Client) Server() string { return c.base.String() }

func parseServer(s string) (*url.URL, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, errors.New("client: no server address")
	}
	if !strings.Contains(s, "://") {
		s = "https://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("client: server address: %w", err)
	}
	if u.Scheme != "https" {
		return nil, fmt.Errorf("client: server address %q: scheme must be https", s)
	}
	if u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("client: server address %q: want https://host[:port][/prefix]", s)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	return u, nil
}

func httpClient(hc *http.Client, caPEM []byte) (*http.Client, error) {
	var pool *x509.CertPool
	if len(caPEM) > 0 {
		pool = x509.NewCertPool()
		if !pool.AppendCertsFromPEM(caPEM) {
			return nil, errors.New("client: CA file holds no PEM certificate")
		}
	}
	if hc == nil {
		t := defaultTransport()
		t.TLSClientConfig.RootCAs = pool
		return &http.Client{
			Transport: t,
			// The API never redirects; refusing keeps the token at home.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}, nil
	}
	if pool == nil {
		return hc, nil
	}
	var t *http.Transport
	switch rt := hc.Transport.(type) {
	case nil:
		t = defaultTransport()
	case *http.Transport:
		t = rt.Clone()
		if t.TLSClientConfig == nil {
			t.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		}
	default:
		return nil, fmt.Errorf("client: cannot add the CA to a %T transport", rt)
	}
	t.TLSClientConfig.RootCAs = pool
	cp := *hc
	cp.Transport = t
	return &cp, nil
}

func defaultTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	t.TLSHandshakeTimeout = 10 * time.Second
	t.ResponseHeaderTimeout = 60 * time.Second
	t.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	return t
}

// send builds and sends one request; the caller closes the body. A non-2xx
// answer comes back as *api.Problem, a failure to talk as *TransportError.
func (c *Client) send(ctx context.Context, method, path string, q url.Values, in any) (*http.Response, error) {
	if strings.HasSuffix(path, "/") || strings.Contains(path, "//") {
		return nil, fmt.Errorf("%s %s: empty id or name", method, path)
	}
	u := *c.base
	u.Path = c.base.Path + unescape(path)
	u.RawPath = c.base.EscapedPath() + path
	u.RawQuery = q.Encode()
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, fmt.Errorf("encoding request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return nil, fmt.Errorf("building request: %w", err)
	}
	c.setHeaders(req, in != nil)
	if c.device != nil {
		h, err := c.device.Authorization(method, unescape(path), time.Now())
		if err != nil {
			return nil, fmt.Errorf("signing the request with the device key: %w", err)
		}
		req.Header.Set(DeviceHeader, h)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, c.transportError(ctx, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		defer resp.Body.Close()
		return nil, readProblem(resp)
	}
	return resp, nil
}

func unescape(p string) string {
	s, err := url.PathUnescape(p)
	if err != nil {
		return p
	}
	return s
}

func (c *Client) setHeaders(req *http.Request, hasBody bool) {
	req.Header.Set("Accept", "application/json, application/problem+json, application/x-ndjson")
	req.Header.Set("User-Agent", c.userAgent)
	if hasBody {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if c.proof != "" {
		req.Header.Set(api.ProofHeader, c.proof)
	}
}

// do sends a request and decodes a 2xx JSON answer into out (if non-nil).
// It returns the status code.
func (c *Client) do(ctx context.Context, method, path string, q url.Values, in, out any) (int, error) {
	resp, err := c.send(ctx, method, path, q, in)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if out == nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxBody))
		return resp.StatusCode, nil
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxBody)).Decode(out); err != nil {
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		return 0, fmt.Errorf("decoding %s %s answer: %w", method, path, err)
	}
	return resp.StatusCode, nil
}

// accepted sends a request whose answer must be 202 Accepted.
func (c *Client) accepted(ctx context.Context, method, path string, in any) (api.Accepted, error) {
	var a api.Accepted
	code, err := c.do(ctx, method, path, nil, in, &a)
	if err != nil {
		return api.Accepted{}, err
	}
	if code != http.StatusAccepted || a.Approval.ID == "" {
		return api.Accepted{}, fmt.Errorf("%s %s: keyfleetd answered %d without an approval request", method, path, code)
	}
	return a, nil
}

// orAccepted sends a request that keyfleetd answers either with out (2xx
// but 202) or with 202 Accepted, when part of it waits for a second
// person. It returns the request for that part, or nil.
func (c *Client) orAccepted(ctx context.Context, method, path string, in, out any) (*api.Accepted, error) {
	var raw json.RawMessage
	code, err := c.do(ctx, method, path, nil, in, &raw)
	if err != nil {
		return nil, err
	}
	if code == http.StatusAccepted {
		var a api.Accepted
		if err := json.Unmarshal(raw, &a); err != nil || a.Approval.ID == "" {
			return nil, fmt.Errorf("%s %s: keyfleetd answered 202 without an approval request", method, path)
		}
		return &a, nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return nil, fmt.Errorf("decoding %s %s answer: %w", method, path, err)
	}
	return nil, nil
}

// p builds a path from a format and path segments, escaping each segment.
func p(format string, segs ...string) string {
	args := make([]any, len(segs))
	for i, s := range segs {
		switch s {
		case ".", "..":
			// Escaped so that no one cleans them into another route.
			args[i] = strings.ReplaceAll(s, ".", "%2E")
		default:
			args[i] = url.PathEscape(s)
		}
	}
	return fmt.Sprintf(format, args...)
}
