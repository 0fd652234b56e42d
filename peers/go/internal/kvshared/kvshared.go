// Package kvshared holds what the KV plugin and the KV host must agree on:
// the go-plugin handshake, the plugin set name and the gRPC plugin glue.
package kvshared

import (
	"context"

	"github.com/hashicorp/go-plugin"
	"github.com/hashicorp/go-plugin/examples/grpc/proto"
	"google.golang.org/grpc"
)

// PluginName is the key of the plugin set (host-local; never on the wire).
const PluginName = "kv_grpc"

// Handshake is shared by the host and the plugin. The cookie is a UX guard
// (the plugin refuses to run when launched by hand), not a security feature.
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  1,
	MagicCookieKey:   "BASIC_PLUGIN",
	MagicCookieValue: "hello",
}

// MaxMsgSize is the gRPC message limit used on both sides (256 MiB, as
// terraform-plugin-go servers do).
const MaxMsgSize = 256 << 20

// KVPlugin is the go-plugin GRPCPlugin for the KV service. The plugin side
// sets Impl; the host side leaves it nil and receives a proto.KVClient from
// Dispense. The embedded (nil) plugin.Plugin satisfies the net/rpc half of
// the interface, which is never used because only gRPC is allowed.
type KVPlugin struct {
	plugin.Plugin
	Impl proto.KVServer
}

// GRPCServer registers the KV service on the plugin's gRPC server.
func (p *KVPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	proto.RegisterKVServer(s, p.Impl)
	return nil
}

// GRPCClient returns the raw generated client, so the host can pass its own
// call options (deadlines, grpc.Peer) on every call.
func (p *KVPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (interface{}, error) {
	return proto.NewKVClient(c), nil
}

var _ plugin.GRPCPlugin = (*KVPlugin)(nil)
