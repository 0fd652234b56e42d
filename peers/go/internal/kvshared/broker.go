package kvshared

import (
	"context"
	"sync"

	"github.com/hashicorp/go-plugin"
	"github.com/hashicorp/go-plugin/examples/grpc/proto"
	"google.golang.org/grpc"
)

// The brokered-call convention of the Rust test plugin (crates/tests,
// rpcplugin_tests::keys): a few KV keys are commands.
const (
	// TestCookieKey and TestCookieValue are the Rust test plugin's cookie.
	TestCookieKey   = "RPCPLUGIN_TEST_COOKIE"
	TestCookieValue = "e2e-4b1d6a"
	// KeyServeBroker: Get makes the plugin serve a brokered KV server
	// holding KeyGreeting and answers its broker id (decimal).
	KeyServeBroker = "serve-broker"
	// KeyGreeting is the key the plugin's brokered server holds.
	KeyGreeting = "greeting"
	// GreetingValue is its value.
	GreetingValue = "hello from the plugin's brokered server"
	// KeyDialPrefix: Put of "broker:<id>" makes the plugin dial the host's
	// brokered server <id> and Put KeyFromPlugin there with the value.
	KeyDialPrefix = "broker:"
	// KeyFromPlugin is the key the plugin writes on the host's server.
	KeyFromPlugin = "from-plugin"
)

// TestHandshake is the handshake of the brokered-call peers.
var TestHandshake = plugin.HandshakeConfig{
	ProtocolVersion:  1,
	MagicCookieKey:   TestCookieKey,
	MagicCookieValue: TestCookieValue,
}

// BrokeredKV is what the host gets from Dispense of a BrokerKVPlugin: the
// KV client and the host's broker.
type BrokeredKV struct {
	KV     proto.KVClient
	Broker *plugin.GRPCBroker
}

// BrokerKVPlugin is KVPlugin with the broker handed to both sides: the
// plugin side builds its server with NewServer(broker).
type BrokerKVPlugin struct {
	plugin.Plugin
	NewServer func(*plugin.GRPCBroker) proto.KVServer
}

// GRPCServer registers the KV service built for this broker.
func (p *BrokerKVPlugin) GRPCServer(b *plugin.GRPCBroker, s *grpc.Server) error {
	proto.RegisterKVServer(s, p.NewServer(b))
	return nil
}

// GRPCClient returns the KV client with the host's broker.
func (p *BrokerKVPlugin) GRPCClient(_ context.Context, b *plugin.GRPCBroker, c *grpc.ClientConn) (interface{}, error) {
	return &BrokeredKV{KV: proto.NewKVClient(c), Broker: b}, nil
}

var _ plugin.GRPCPlugin = (*BrokerKVPlugin)(nil)

// MemKV is a KV service backed by a map, for brokered servers.
type MemKV struct {
	proto.UnimplementedKVServer
	mu sync.Mutex
	m  map[string][]byte
}

// NewMemKV is an empty MemKV.
func NewMemKV() *MemKV { return &MemKV{m: map[string][]byte{}} }

// Put stores the value.
func (s *MemKV) Put(_ context.Context, req *proto.PutRequest) (*proto.Empty, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[req.Key] = append([]byte(nil), req.Value...)
	return &proto.Empty{}, nil
}

// Get answers the value (empty when missing).
func (s *MemKV) Get(_ context.Context, req *proto.GetRequest) (*proto.GetResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return &proto.GetResponse{Value: s.m[req.Key]}, nil
}

// Value is what Get would answer for key.
func (s *MemKV) Value(key string) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[key]
}

// Serve returns a go-plugin server factory serving s.
func (s *MemKV) Serve(opts []grpc.ServerOption) *grpc.Server {
	server := grpc.NewServer(opts...)
	proto.RegisterKVServer(server, s)
	return server
}
