package radius

import (
	"crypto/hmac"
	"crypto/md5"
	"encoding/binary"
	"errors"
	"unicode/utf8"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2869"
)

// Why a packet is dropped without an answer. Each is a label of
// keyfleet_radius_dropped_total.
var (
	errMalformed = errors.New("malformed")
	// errUnsupportedCode: not an Access-Request or Status-Server (the
	// listener serves no accounting).
	errUnsupportedCode = errors.New("unsupported_code")
	// errNoAuthenticator: no Message-Authenticator. Answering a request
	// that carries none is what the BlastRADIUS forgery (CVE-2024-3596)
	// needs, so such requests are dropped (RFC 3579 §3.2; the deployment
	// guidance that followed the CVE requires it on every request).
	errNoAuthenticator = errors.New("no_message_authenticator")
	// errBadAuthenticator: the Message-Authenticator does not match: the
	// wrong shared secret, or a forged or altered packet.
	errBadAuthenticator = errors.New("bad_message_authenticator")
)

const (
	headerLen = 20
	maLen     = 16 // Message-Authenticator value: an HMAC-MD5
	// maxText is the most a string attribute holds (RFC 2865 §5).
	maxText = 253
)

// packetLength checks the header's length field against the datagram
// and returns the packet's bytes without any padding after it.
func packetLength(b []byte) ([]byte, error) {
	if len(b) < headerLen {
		return nil, errMalformed
	}
	n := int(binary.BigEndian.Uint16(b[2:4]))
	if n < headerLen || n > radius.MaxPacketLength || n > len(b) {
		return nil, errMalformed
	}
	return b[:n], nil
}

// checkMessageAuthenticator verifies a request's Message-Authenticator
// (RFC 3579 §3.2): exactly one, 18 bytes long, equal to the HMAC-MD5 of
// the packet with its value zeroed, keyed with the shared secret.
func checkMessageAuthenticator(pkt, secret []byte) error {
	at := -1
	for i := headerLen; i < len(pkt); {
		if i+2 > len(pkt) || pkt[i+1] < 2 || i+int(pkt[i+1]) > len(pkt) {
			return errMalformed
		}
		if radius.Type(pkt[i]) == rfc2869.MessageAuthenticator_Type {
			if at >= 0 || pkt[i+1] != 2+maLen {
				return errBadAuthenticator
			}
			at = i + 2
		}
		i += int(pkt[i+1])
	}
	if at < 0 {
		return errNoAuthenticator
	}
	zeroed := append([]byte(nil), pkt...)
	clear(zeroed[at : at+maLen])
	mac := hmac.New(md5.New, secret)
	mac.Write(zeroed)
	if !hmac.Equal(mac.Sum(nil), pkt[at:at+maLen]) {
		return errBadAuthenticator
	}
	return nil
}

// encodeReply builds the answer to req: Message-Authenticator first (the
// BlastRADIUS mitigation: a forger cannot put chosen bytes before it),
// then attrs, then the request's Proxy-State attributes in order (RFC 2865
// §5.33), signed with the Message-Authenticator (RFC 3579 §3.2, over the
// request's authenticator) and the Response Authenticator (RFC 2865 §3).
func encodeReply(req *radius.Packet, code radius.Code, attrs radius.Attributes) ([]byte, error) {
	resp := req.Response(code)
	resp.Attributes = make(radius.Attributes, 0, len(attrs)+2)
	resp.Add(rfc2869.MessageAuthenticator_Type, make(radius.Attribute, maLen))
	resp.Attributes = append(resp.Attributes, attrs...)
	for _, avp := range req.Attributes {
		if avp.Type == rfc2865.ProxyState_Type {
			resp.Add(avp.Type, avp.Attribute)
		}
	}
	b, err := resp.MarshalBinary() // the authenticator field holds the request's
	if err != nil {
		return nil, err
	}
	mac := hmac.New(md5.New, req.Secret)
	mac.Write(b)
	mac.Sum(b[headerLen+2 : headerLen+2 : headerLen+2+maLen])
	sum := md5.New()
	sum.Write(b)
	sum.Write(req.Secret)
	sum.Sum(b[4:4:headerLen])
	return b, nil
}

// textAttrs splits a message into string attributes of typ, each at most
// 253 bytes, cut between runes (RFC 2865 §5.18: a client joins several
// Reply-Messages in order).
func textAttrs(typ radius.Type, msg string) radius.Attributes {
	var out radius.Attributes
	for msg != "" {
		n := min(len(msg), maxText)
		for n < len(msg) && n > 0 && !utf8.RuneStart(msg[n]) {
			n--
		}
		out = append(out, &radius.AVP{Type: typ, Attribute: radius.Attribute(msg[:n])})
		msg = msg[n:]
	}
	return out
}
