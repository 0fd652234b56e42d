// Command kv-bench-plugin is the go-plugin bench plugin: the KV service over
// an in-memory map with no per-call logging (the KV contract plugin logs
// every call), so that every language's bench plugin does the same work per
// call. AutoMTLS when the host sends PLUGIN_CLIENT_CERT, plaintext otherwise.
package main

import (
	"context"
	"os"
	"sync"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"github.com/hashicorp/go-plugin/examples/grpc/proto"
	"google.golang.org/grpc"

	"github.com/rpcplugin/rpcplugin/peers/go/internal/kvshared"
)

type store struct {
	proto.UnimplementedKVServer
	mu sync.RWMutex
	m  map[string][]byte
}

func (s *store) Put(_ context.Context, req *proto.PutRequest) (*proto.Empty, error) {
	s.mu.Lock()
	s.m[req.Key] = req.Value
	s.mu.Unlock()
	return &proto.Empty{}, nil
}

func (s *store) Get(_ context.Context, req *proto.GetRequest) (*proto.GetResponse, error) {
	s.mu.RLock()
	v := s.m[req.Key]
	s.mu.RUnlock()
	return &proto.GetResponse{Value: v}, nil
}

func main() {
	logger := hclog.New(&hclog.LoggerOptions{
		Name:       "kv-bench-plugin",
		Level:      hclog.Info,
		Output:     os.Stderr,
		JSONFormat: true,
	})
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: kvshared.Handshake,
		Plugins: plugin.PluginSet{
			kvshared.PluginName: &kvshared.KVPlugin{Impl: &store{m: map[string][]byte{}}},
		},
		GRPCServer: func(opts []grpc.ServerOption) *grpc.Server {
			opts = append(opts,
				grpc.MaxRecvMsgSize(kvshared.MaxMsgSize),
				grpc.MaxSendMsgSize(kvshared.MaxMsgSize))
			return grpc.NewServer(opts...)
		},
		Logger: logger,
	})
}
