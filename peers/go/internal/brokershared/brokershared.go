// Package brokershared is what the broker programs (broker-host,
// broker-plugin, follow-host, kv-host with -broker) agree on with the Rust test plugin
// (crates/tests/src/bin/rpcplugin-test-plugin.rs) and the Rust broker host
// (crates/tests/src/bin/rpcplugin-broker-host.rs): the handshake, the KV
// command keys that drive the GRPCBroker, and the plugin glue that hands
// the broker to both sides.
package brokershared

import (
	"context"
	"sync"

	"github.com/hashicorp/go-plugin"
	"github.com/hashicorp/go-plugin/examples/grpc/proto"
	"google.golang.org/grpc"
)

// PluginName is the key of the plugin set (host-local; never on the wire).
const PluginName = "kv_grpc"

// Handshake is the Rust test plugin's cookie (rpcplugin_tests::COOKIE_KEY).
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  1,
	MagicCookieKey:   "RPCPLUGIN_TEST_COOKIE",
	MagicCookieValue: "e2e-4b1d6a",
}

// The KV keys that are commands (rpcplugin_tests::keys).
const (
	// Get: the plugin serves a brokered KV server holding Greeting and
	// answers with its broker id (decimal).
	ServeBroker = "serve-broker"
	// The key and value the plugin's brokered KV server holds.
	Greeting      = "greeting"
	GreetingValue = "hello from the plugin's brokered server"
	// Put with key DialPrefix+id: the plugin dials the host's brokered KV
	// server id and puts FromPlugin = the value there.
	DialPrefix = "broker:"
	FromPlugin = "from-plugin"
	// Put: the plugin exits at once with the status given as the value.
	Exit = "exit"
	// Get: the plugin's process id (decimal).
	Pid = "pid"
)

// Host is what the host side dispenses: the KV client and the broker.
type Host struct {
	KV     proto.KVClient
	Broker *plugin.GRPCBroker
}

// KVPlugin serves Impl(broker) on the plugin side and returns a Host on
// the host side.
type KVPlugin struct {
	plugin.Plugin
	Impl func(*plugin.GRPCBroker) proto.KVServer
}

// GRPCServer registers the KV service, built with the plugin's broker.
func (p *KVPlugin) GRPCServer(b *plugin.GRPCBroker, s *grpc.Server) error {
	proto.RegisterKVServer(s, p.Impl(b))
	return nil
}

// GRPCClient returns the KV client and the host's broker.
func (p *KVPlugin) GRPCClient(_ context.Context, b *plugin.GRPCBroker, c *grpc.ClientConn) (interface{}, error) {
	return &Host{KV: proto.NewKVClient(c), Broker: b}, nil
}

var _ plugin.GRPCPlugin = (*KVPlugin)(nil)

// Memory is a plain in-memory KV store (Get of a missing key: empty value).
type Memory struct {
	proto.UnimplementedKVServer
	mu sync.Mutex
	m  map[string][]byte
}

// NewMemory returns an empty store.
func NewMemory() *Memory { return &Memory{m: map[string][]byte{}} }

// Put stores a copy of the value.
func (s *Memory) Put(_ context.Context, req *proto.PutRequest) (*proto.Empty, error) {
	s.mu.Lock()
	s.m[req.Key] = append([]byte(nil), req.Value...)
	s.mu.Unlock()
	return &proto.Empty{}, nil
}

// Get returns the value under the key.
func (s *Memory) Get(_ context.Context, req *proto.GetRequest) (*proto.GetResponse, error) {
	s.mu.Lock()
	v := s.m[req.Key]
	s.mu.Unlock()
	return &proto.GetResponse{Value: v}, nil
}

// Value is what Get would answer for key.
func (s *Memory) Value(key string) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[key]
}

// Serve returns a go-plugin server factory serving s (for AcceptAndServe).
func (s *Memory) Serve(opts []grpc.ServerOption) *grpc.Server {
	server := grpc.NewServer(opts...)
	proto.RegisterKVServer(server, s)
	return server
}
