package radius

import (
	"context"
	"fmt"
	"net"
	"strings"
	"unicode"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"

	"github.com/keyfleet/keyfleet/daemon/core"
)

// answer is the decision on one Access-Request.
type answer struct {
	code   radius.Code // Access-Accept, -Reject or -Challenge
	msg    string      // Reply-Message, for the person at the client
	state  []byte      // State of a challenge
	reason string      // why, in a word: metrics, logs and audit records
}

func (a answer) kind() string {
	switch a.code {
	case radius.CodeAccessAccept:
		return "accept"
	case radius.CodeAccessChallenge:
		return "challenge"
	}
	return "reject"
}

func (a answer) attrs() radius.Attributes {
	out := textAttrs(rfc2865.ReplyMessage_Type, a.msg)
	if a.state != nil {
		out = append(out, &radius.AVP{Type: rfc2865.State_Type, Attribute: a.state})
	}
	return out
}

func accept(reason, msg string) answer {
	return answer{code: radius.CodeAccessAccept, reason: reason, msg: msg}
}

func reject(reason, msg string) answer {
	return answer{code: radius.CodeAccessReject, reason: reason, msg: msg}
}

// handle works on one datagram from addr: it finds the client, checks
// the packet is authentic, answers copies of a request from the cache,
// applies the client's rate limit, decides, and sends the signed answer.
func (s *Server) handle(ctx context.Context, conn net.PacketConn, raw []byte, addr net.Addr) {
	start := s.now()
	c := s.clientFor(addr)
	if c == nil {
		s.metrics.drop("", "unknown_client")
		s.log.Debug("radius: packet from an address of no configured client dropped", "source", addr.String())
		return
	}
	pkt, err := authentic(c, raw)
	if err != nil {
		s.dropped(c, err.Error(), addr)
		return
	}
	key := cacheKey{addr.String(), pkt.Identifier, pkt.Authenticator}
	if reply, seen := s.cache.begin(key, start); seen {
		if reply != nil {
			s.metrics.drop(c.name, "retransmission_answered")
			conn.WriteTo(reply, addr)
		}
		return
	}
	if !c.limit.AllowN(start, 1) {
		s.cache.abort(key)
		s.dropped(c, "client_rate_limited", addr)
		return
	}
	id := s.requestID()
	a := s.decide(core.WithRequest(ctx, requestInfo(id, c, pkt, addr)), c, pkt, addr.String())
	reply, err := encodeReply(pkt, a.code, a.attrs())
	if err != nil {
		s.cache.abort(key)
		s.log.Error("radius: encoding an answer", "err", err, "request_id", id)
		return
	}
	s.cache.finish(key, reply)
	if _, err := conn.WriteTo(reply, addr); err != nil {
		s.log.Warn("radius: sending an answer", "err", err, "request_id", id)
	}
	took := s.now().Sub(start)
	s.metrics.answered(c.name, a, took)
	s.log.Info("radius answer", "request_id", id, "client", c.name, "user", rfc2865.UserName_GetString(pkt),
		"answer", a.kind(), "reason", a.reason, "duration_ms", float64(took.Microseconds())/1000)
}

// authentic checks that raw is an Access-Request or Status-Server from c,
// with a Message-Authenticator made with c's secret, and parses it.
func authentic(c *client, raw []byte) (*radius.Packet, error) {
	b, err := packetLength(raw)
	if err != nil {
		return nil, err
	}
	if code := radius.Code(b[0]); code != radius.CodeAccessRequest && code != radius.CodeStatusServer {
		return nil, errUnsupportedCode
	}
	if err := checkMessageAuthenticator(b, c.secret); err != nil {
		return nil, err
	}
	pkt, err := radius.Parse(b, c.secret)
	if err != nil {
		return nil, errMalformed
	}
	return pkt, nil
}

// dropped counts a packet dropped without an answer, and audits it
// (coalesced per client and reason, see sampler).
func (s *Server) dropped(c *client, reason string, addr net.Addr) {
	s.metrics.drop(c.name, reason)
	s.log.Debug("radius: packet dropped", "client", c.name, "reason", reason, "source", addr.String())
	s.refuseSampled(refusal{client: c.name, source: addr.String(), reason: reason})
}

// refuseSampled audits a refusal, coalesced per client, user and reason.
func (s *Server) refuseSampled(r refusal) {
	if n, now := s.refusals.note(r.client+"\x00"+normalName(r.user)+"\x00"+r.reason, r, s.now()); now {
		s.recordRefusal(r, n)
	}
}

// recordRefusal audits a sampled refusal that stands for n requests.
func (s *Server) recordRefusal(r refusal, n int) {
	ctx := core.WithRequest(context.Background(), core.RequestInfo{ID: s.requestID(), Source: r.source,
		Extra: map[string]string{"radius_client": r.client}})
	err := s.svc.RecordLogin(ctx, s.principal, core.LoginEvent{User: r.user, Outcome: core.LoginRefused, Reason: r.reason, Count: n})
	if err != nil {
		s.log.Error("radius: auditing a refusal", "err", err, "reason", r.reason, "client", r.client)
	}
}

func (s *Server) requestID() string { return fmt.Sprintf("radius-%s-%d", s.boot, s.seq.Add(1)) }

// requestInfo is what audit records keep of where a request came from.
func requestInfo(id string, c *client, pkt *radius.Packet, addr net.Addr) core.RequestInfo {
	extra := map[string]string{"radius_client": c.name}
	put := func(k, v string) {
		if v = printable(v); v != "" {
			extra[k] = v
		}
	}
	put("nas_identifier", rfc2865.NASIdentifier_GetString(pkt))
	put("calling_station_id", rfc2865.CallingStationID_GetString(pkt))
	if ip := rfc2865.NASIPAddress_Get(pkt); ip != nil {
		put("nas_ip_address", ip.String())
	}
	return core.RequestInfo{ID: id, Source: addr.String(), Extra: extra}
}

// printable keeps at most 64 printable characters of what a NAS sent.
func printable(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) {
			return r
		}
		return -1
	}, s)
	if r := []rune(s); len(r) > 64 {
		s = string(r[:64])
	}
	return s
}
