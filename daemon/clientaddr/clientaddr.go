package clientaddr

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// Resolver finds the client address of requests. The zero value trusts no
// proxy: the client is always the TCP peer.
type Resolver struct {
	trusted []netip.Prefix
}

// New returns a Resolver that believes the forwarding headers only from
// peers inside one of trusted (keyfleetd.yaml trusted_proxies).
func New(trusted []netip.Prefix) *Resolver {
	r := &Resolver{}
	for _, p := range trusted {
		r.trusted = append(r.trusted, p.Masked())
	}
	return r
}

// Trusts reports whether a is a trusted proxy.
func (r *Resolver) Trusts(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range r.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Resolve returns the client address of req (see the package comment for
// the rules). It is never empty: a peer address that does not parse is
// returned as the transport gave it, and a missing one as "unknown".
func (r *Resolver) Resolve(req *http.Request) string {
	peer, ok := parseNode(req.RemoteAddr)
	switch {
	case !ok && req.RemoteAddr == "":
		return "unknown"
	case !ok:
		return req.RemoteAddr
	}
	if !r.Trusts(peer) {
		return peer.String()
	}
	fwd, hasFwd := r.walk(peer, forwardedFor(req.Header.Values("Forwarded")))
	xff, hasXFF := r.walk(peer, splitList(req.Header.Values("X-Forwarded-For")))
	switch {
	case hasFwd && hasXFF && fwd != xff:
		return peer.String() // the headers disagree: one of them is forged
	case hasFwd:
		return fwd.String()
	case hasXFF:
		return xff.String()
	}
	return peer.String()
}

// walk finds the client in a chain of hops (leftmost first) that reached
// the trusted peer: the rightmost hop that is not a trusted proxy. An
// element that is not an address ("unknown", an obfuscated name, garbage)
// ends the walk at the last trusted hop, since nothing to its left can be
// believed. ok is false when the chain is empty.
func (r *Resolver) walk(peer netip.Addr, hops []string) (client netip.Addr, ok bool) {
	if len(hops) == 0 {
		return netip.Addr{}, false
	}
	client = peer
	for i := len(hops) - 1; i >= 0; i-- {
		a, valid := parseNode(hops[i])
		if !valid {
			return client, true
		}
		client = a
		if !r.Trusts(a) {
			return client, true
		}
	}
	return client, true
}

// splitList splits comma-separated header values, in order, across
// repeated header lines.
func splitList(values []string) []string {
	var out []string
	for _, v := range values {
		for _, e := range strings.Split(v, ",") {
			if e = strings.TrimSpace(e); e != "" {
				out = append(out, e)
			}
		}
	}
	return out
}

// forwardedFor returns the "for" parameter of every forwarded-element of
// Forwarded headers (RFC 7239 §4), in order. An element without one reads
// as "unknown", which stops the walk there; headers that name no "for" at
// all (a proxy saying only proto=https) are as if absent.
func forwardedFor(values []string) []string {
	var out []string
	named := false
	for _, elem := range splitQuoted(strings.Join(values, ","), ',') {
		node := "unknown"
		for _, pair := range splitQuoted(elem, ';') {
			name, value, found := strings.Cut(strings.TrimSpace(pair), "=")
			if found && strings.EqualFold(strings.TrimSpace(name), "for") {
				node, named = strings.Trim(strings.TrimSpace(value), `"`), true
			}
		}
		if strings.TrimSpace(elem) != "" {
			out = append(out, node)
		}
	}
	if !named {
		return nil
	}
	return out
}

// splitQuoted splits s at sep outside double-quoted strings (RFC 7230
// quoted-string, with backslash escapes).
func splitQuoted(s string, sep byte) []string {
	var out []string
	start, quoted := 0, false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\' && quoted:
			i++
		case c == '"':
			quoted = !quoted
		case c == sep && !quoted:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

// parseNode reads an address as peers and proxies write it: "192.0.2.1",
// "192.0.2.1:4711", "2001:db8::1", "[2001:db8::1]" or "[2001:db8::1]:4711".
// IPv4-mapped IPv6 addresses are unmapped.
func parseNode(s string) (netip.Addr, bool) {
	s = strings.TrimSpace(s)
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap().WithZone(""), true
	}
	if host, _, err := net.SplitHostPort(s); err == nil {
		s = host
	}
	a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]"))
	if err != nil {
		return netip.Addr{}, false
	}
	return a.Unmap().WithZone(""), true
}

type ctxKey struct{}

// Middleware computes the client address of every request once, with r,
// and keeps it in the request's context for [Of].
func Middleware(r *Resolver, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		ctx := context.WithValue(req.Context(), ctxKey{}, r.Resolve(req))
		next.ServeHTTP(w, req.WithContext(ctx))
	})
}

// Of returns the client address of req as [Middleware] found it, or the
// peer's address (without its port) when the request did not pass through
// the middleware.
func Of(req *http.Request) string {
	if a, ok := req.Context().Value(ctxKey{}).(string); ok {
		return a
	}
	var none Resolver
	return none.Resolve(req)
}
