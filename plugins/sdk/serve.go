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
const ProtocolVersion = 1

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
// A future protocol version 2 adds an entry here; plugins built against
// this SDK keep working with a host that still offers version 1.
func PluginSets(impl Factor) map[int]plugin.PluginSet {
	return map[int]plugin.PluginSet{
		1: {PluginName: &factorPlugin{impl: impl}},
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
		GRPCServer:       plugin.DefaultGRPCServer,
	})
}

// factorPlugin binds a Factor to go-plugin's gRPC transport.
type factorPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	impl Factor
}

var _ plugin.GRPCPlugin = (*factorPlugin)(nil)

// GRPCServer registers the plugin side.
func (p *factorPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	if p.impl == nil {
		return errors.New("sdk: no Factor to serve")
	}
	factorpb.RegisterFactorServer(s, &grpcServer{impl: p.impl})
	return nil
}

// GRPCClient returns the host side: an [Factor] whose calls cross the wire.
func (p *factorPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return NewGRPCClient(c), nil
}
