package sdk

import (
	"context"
	"errors"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/keyfleet/keyfleet/plugins/sdk/internal/factorpb"
)

// ProtocolVersion is the newest version of the factor plugin protocol this
// package speaks. The host and a plugin each offer the versions they know
// and go-plugin picks the highest one both have (see [PluginSets]).
//
// Version 1 makes each call a unary gRPC call. Version 2 keeps Describe
// there and sends every other call over one stream that stays open, with
// the calls made at the same moment in one message: a call then costs
// the plugin and the daemon a small part of what a unary call does.
const ProtocolVersion = 2

// PluginName is the name under which a plugin serves its Factor.
const PluginName = "factor"

// Handshake is the go-plugin handshake between keyfleetd and a factor
// plugin.
//
// It is a compatibility check, not a security control: it stops a
// keyfleet plugin from being started by something that is not keyfleetd
// (the binary then prints a short message and exits) and keyfleetd from
// talking to a binary that is not a keyfleet plugin. Anyone can read the
// cookie here. What protects the daemon is the host's SHA-256 pinning of
// every plugin binary and the mutual TLS it sets up with each process.
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  ProtocolVersion,
	MagicCookieKey:   "KEYFLEET_FACTOR_PLUGIN",
	MagicCookieValue: "keyfleet-factor-plugin-v1-3f1c9a6e",
}

// PluginSets returns the versioned plugin sets for go-plugin: protocol
// version → the plugins served under it. impl is the Factor a plugin
// serves; the host passes nil (it only uses the client side).
//
// A plugin built against an SDK that knew only version 1 keeps working
// with this host, and a plugin built against this SDK with a host that
// offers only version 1.
func PluginSets(impl Factor) map[int]plugin.PluginSet {
	return map[int]plugin.PluginSet{
		1: {PluginName: &factorPlugin{impl: impl}},
		2: {PluginName: &factorPlugin{impl: impl, stream: true}},
	}
}

// Serve runs impl as a keyfleet factor plugin and returns when the host
// stops it. It is all a plugin's main needs:
//
//	func main() { sdk.Serve(totp.Factor{}) }
//
// Started by hand rather than by keyfleetd, the binary prints that it is a
// plugin and exits with status 1.
func Serve(impl Factor) {
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig:  Handshake,
		VersionedPlugins: PluginSets(impl),
		GRPCServer: func(opts []grpc.ServerOption) *grpc.Server {
			return grpc.NewServer(append(opts, ServerOptions()...)...)
		},
	})
}

// transportWindow is the HTTP/2 flow-control window, per stream and per
// connection, on both ends of a plugin's connection. A fixed window
// turns off grpc-go's bandwidth estimator, which on a connection that
// carries one small message at a time sends a PING after nearly every
// message, and the other process wakes to answer it: about as many
// frames again as the calls themselves. A megabyte is far more than the
// calls in flight at once ever hold.
const transportWindow = 1 << 20

// ServerOptions are the gRPC server options of a plugin's side of the
// connection; [Serve] uses them.
func ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{grpc.InitialWindowSize(transportWindow), grpc.InitialConnWindowSize(transportWindow)}
}

// DialOptions are the gRPC options of the host's side of the connection
// (go-plugin's ClientConfig.GRPCDialOptions).
func DialOptions() []grpc.DialOption {
	return []grpc.DialOption{grpc.WithInitialWindowSize(transportWindow), grpc.WithInitialConnWindowSize(transportWindow)}
}

// factorPlugin binds a Factor to go-plugin's gRPC transport, in protocol
// version 1 or (stream) 2.
type factorPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	impl   Factor
	stream bool
}

var _ plugin.GRPCPlugin = (*factorPlugin)(nil)

// GRPCServer registers the plugin side.
func (p *factorPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	if p.impl == nil {
		return errors.New("sdk: no Factor to serve")
	}
	if p.stream {
		RegisterGRPCServer(s, p.impl)
		return nil
	}
	factorpb.RegisterFactorServer(s, &grpcServer{impl: p.impl})
	return nil
}

// GRPCClient returns the host side: a [Factor] whose calls cross the wire.
func (p *factorPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	if p.stream {
		return newStreamClient(c), nil
	}
	return NewGRPCClient(c), nil
}
