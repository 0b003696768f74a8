package clientaddr

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
)

func request(peer string, headers ...string) *http.Request {
	r := httptest.NewRequest("GET", "https://keyfleet.test/", nil)
	r.RemoteAddr = peer
	for i := 0; i+1 < len(headers); i += 2 {
		r.Header.Add(headers[i], headers[i+1])
	}
	return r
}

func TestTheClientAddressIsBelievedOnlyFromTrustedProxies(t *testing.T) {
	proxies := New([]netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8:ffff::/48")})
	for _, tc := range []struct {
		name    string
		r       *Resolver
		req     *http.Request
		want    string
		because string
	}{
		{"a direct client is its peer", proxies, request("198.51.100.7:5000"), "198.51.100.7", ""},
		{"a direct client cannot choose its address with X-Forwarded-For", proxies,
			request("198.51.100.7:5000", "X-Forwarded-For", "203.0.113.9"), "198.51.100.7", "the peer is no proxy"},
		{"a direct client cannot choose its address with Forwarded", proxies,
			request("198.51.100.7:5000", "Forwarded", "for=203.0.113.9"), "198.51.100.7", "the peer is no proxy"},
		{"without trusted proxies the headers are ignored", New(nil),
			request("10.1.2.3:443", "X-Forwarded-For", "203.0.113.9"), "10.1.2.3", ""},
		{"a trusted proxy's X-Forwarded-For names the client", proxies,
			request("10.1.2.3:443", "X-Forwarded-For", "203.0.113.9"), "203.0.113.9", ""},
		{"a trusted proxy's Forwarded names the client", proxies,
			request("10.1.2.3:443", "Forwarded", `for=203.0.113.9;proto=https;by=10.1.2.3`), "203.0.113.9", ""},
		{"an IPv6 client in Forwarded is quoted with its port", proxies,
			request("10.1.2.3:443", "Forwarded", `for="[2001:db8:cafe::17]:4711"`), "2001:db8:cafe::17", ""},
		{"what the client wrote left of its own address is not believed", proxies,
			request("10.1.2.3:443", "X-Forwarded-For", "1.1.1.1, 203.0.113.9"), "203.0.113.9", ""},
		{"a forged trusted hop left of the client is not skipped", proxies,
			request("10.1.2.3:443", "X-Forwarded-For", "1.1.1.1, 10.9.9.9, 203.0.113.9"), "203.0.113.9", ""},
		{"chained trusted proxies are skipped from the right", proxies,
			request("10.1.2.3:443", "X-Forwarded-For", "203.0.113.9, 10.7.7.7, [2001:db8:ffff::1]:80"), "203.0.113.9", ""},
		{"repeated header lines form one chain", proxies,
			request("10.1.2.3:443", "X-Forwarded-For", "1.1.1.1", "X-Forwarded-For", "203.0.113.9, 10.4.4.4"), "203.0.113.9", ""},
		{"several Forwarded elements walk like X-Forwarded-For", proxies,
			request("10.1.2.3:443", "Forwarded", `for=1.1.1.1, for=203.0.113.9;proto=https`, "Forwarded", `for=10.4.4.4`), "203.0.113.9", ""},
		{"an unknown hop stops the walk at the proxy that wrote it", proxies,
			request("10.1.2.3:443", "Forwarded", `for=1.1.1.1, for=unknown`), "10.1.2.3", ""},
		{"garbage stops the walk at the last trusted hop", proxies,
			request("10.1.2.3:443", "X-Forwarded-For", "1.1.1.1, not-an-address, 10.5.5.5"), "10.5.5.5", ""},
		{"a chain of trusted hops only names its first", proxies,
			request("10.1.2.3:443", "X-Forwarded-For", "10.8.8.8, 10.5.5.5"), "10.8.8.8", ""},
		{"an empty header leaves the proxy as the client", proxies,
			request("10.1.2.3:443", "X-Forwarded-For", " "), "10.1.2.3", ""},
		{"a Forwarded header without for is as if absent", proxies,
			request("10.1.2.3:443", "Forwarded", "proto=https", "X-Forwarded-For", "203.0.113.9"), "203.0.113.9", ""},
		{"headers that agree are believed", proxies,
			request("10.1.2.3:443", "Forwarded", "for=203.0.113.9", "X-Forwarded-For", "203.0.113.9"), "203.0.113.9", ""},
		{"headers that disagree leave the proxy as the client", proxies,
			request("10.1.2.3:443", "Forwarded", "for=1.1.1.1", "X-Forwarded-For", "203.0.113.9"), "10.1.2.3", "one was forged by the client"},
		{"IPv4-mapped addresses are unmapped before the trust check", proxies,
			request("[::ffff:10.1.2.3]:443", "X-Forwarded-For", "::ffff:203.0.113.9"), "203.0.113.9", ""},
		{"a peer that does not parse is returned as given", proxies, request("@unix"), "@unix", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.r.Resolve(tc.req); got != tc.want {
				t.Fatalf("client = %q, want %q %s", got, tc.want, tc.because)
			}
		})
	}
}

func TestTheMiddlewareComputesTheAddressOnceForEveryHandler(t *testing.T) {
	r := New([]netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")})
	var got string
	h := Middleware(r, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		req.Header.Set("X-Forwarded-For", "192.0.2.66") // too late: already resolved
		got = Of(req)
	}))
	h.ServeHTTP(httptest.NewRecorder(), request("127.0.0.1:9", "X-Forwarded-For", "203.0.113.9"))
	if got != "203.0.113.9" {
		t.Fatalf("Of = %q", got)
	}
	if got := Of(request("127.0.0.1:9", "X-Forwarded-For", "203.0.113.9")); got != "127.0.0.1" {
		t.Fatalf("without the middleware Of = %q, want the peer", got)
	}
}

func FuzzResolveNeverTrustsAnUntrustedPeer(f *testing.F) {
	f.Add("198.51.100.7:1", "for=1.2.3.4", "5.6.7.8")
	f.Add("10.0.0.1:1", `for="[::1]:80";by=x, for=unknown`, "1.1.1.1,,")
	f.Add("10.0.0.1:1", `for="\"`, `[`)
	r := New([]netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")})
	f.Fuzz(func(t *testing.T, peer, fwd, xff string) {
		got := r.Resolve(request(peer, "Forwarded", fwd, "X-Forwarded-For", xff))
		if a, ok := parseNode(peer); ok && !r.Trusts(a) && got != a.String() {
			t.Fatalf("untrusted peer %q resolved to %q", peer, got)
		}
		if got == "" {
			t.Fatal("empty client address")
		}
	})
}
