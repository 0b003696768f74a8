// Package clientaddr finds the address of the client behind a request, the
// one place keyfleetd decides it: the API and the web pages record it as
// the source of audit events and log lines, and the rate limits
// (daemon/ratelimit) count attempts by it.
//
// With no trusted proxies configured, the client is the TCP peer and the
// forwarding headers are ignored, so nobody can choose the address they are
// counted and audited under. When the peer is a trusted proxy (keyfleetd.yaml
// trusted_proxies), the client is found in the Forwarded header (RFC 7239
// §4, the "for" parameter) or in X-Forwarded-For, walking the chain from
// the right and skipping hops that are themselves trusted proxies: the
// first untrusted hop is the client. Every element to its left was written
// by the client or by proxies it chose, so it is never believed.
//
// A proxy appends its peer to the header it knows and passes on the other
// header as the client sent it. When a request carries both headers and
// they name different clients, one of them is forged: the trusted proxy
// itself is taken as the client, which is conservative (the forger shares
// the proxy's rate limit and is audited under its address).
//
// [Middleware] computes the address once per request and keeps it in the
// request's context; [Of] reads it there (or falls back to the peer for a
// handler served without the middleware, as in tests).
package clientaddr
