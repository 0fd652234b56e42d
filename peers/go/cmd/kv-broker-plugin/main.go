// Command kv-broker-plugin is a go-plugin gRPC plugin that serves KV with the
// Rust test plugin's brokered-call commands (kvshared.KeyServeBroker,
// kvshared.KeyDialPrefix) and its cookie, so a host can make brokered calls
// in both directions against a Go plugin. go-plugin multiplexes the broker by
// itself when the host sets PLUGIN_MULTIPLEX_GRPC=true.
package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"github.com/hashicorp/go-plugin/examples/grpc/proto"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/rpcplugin/rpcplugin/peers/go/internal/kvshared"
)

// brokerKV is kvshared.MemKV plus the brokered-call commands.
type brokerKV struct {
	*kvshared.MemKV
	broker *plugin.GRPCBroker
	log    hclog.Logger
}

func (s *brokerKV) Get(ctx context.Context, req *proto.GetRequest) (*proto.GetResponse, error) {
	if req.Key != kvshared.KeyServeBroker {
		return s.MemKV.Get(ctx, req)
	}
	greeting := kvshared.NewMemKV()
	_, _ = greeting.Put(ctx, &proto.PutRequest{Key: kvshared.KeyGreeting, Value: []byte(kvshared.GreetingValue)})
	id := s.broker.NextId()
	go s.broker.AcceptAndServe(id, greeting.Serve)
	s.log.Info("serving a brokered server", "id", id)
	return &proto.GetResponse{Value: []byte(strconv.FormatUint(uint64(id), 10))}, nil
}

func (s *brokerKV) Put(ctx context.Context, req *proto.PutRequest) (*proto.Empty, error) {
	rest, ok := strings.CutPrefix(req.Key, kvshared.KeyDialPrefix)
	if !ok {
		return s.MemKV.Put(ctx, req)
	}
	id, err := strconv.ParseUint(rest, 10, 32)
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "bad broker id %q", rest)
	}
	conn, err := s.broker.Dial(uint32(id))
	if err != nil {
		return nil, status.Errorf(codes.Internal, "dial broker id %d: %v", id, err)
	}
	defer func() { _ = conn.Close() }()
	_, err = proto.NewKVClient(conn).Put(ctx, &proto.PutRequest{Key: kvshared.KeyFromPlugin, Value: req.Value})
	if err != nil {
		return nil, status.Errorf(codes.Internal, "put on the host's brokered server: %v", err)
	}
	s.log.Info("wrote into the host's brokered server", "id", id)
	return &proto.Empty{}, nil
}

func main() {
	logger := hclog.New(&hclog.LoggerOptions{
		Name:       "kv-broker-plugin",
		Level:      hclog.Info,
		Output:     os.Stderr,
		JSONFormat: true,
	})
	if t := os.Getenv("RPCPLUGIN_KV_TRANSPORT"); t != "" && t != "unix" {
		fmt.Fprintf(os.Stderr, "kv-broker-plugin: only unix sockets on this OS (asked %q)\n", t)
	}
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: kvshared.TestHandshake,
		Plugins: plugin.PluginSet{
			kvshared.PluginName: &kvshared.BrokerKVPlugin{NewServer: func(b *plugin.GRPCBroker) proto.KVServer {
				return &brokerKV{MemKV: kvshared.NewMemKV(), broker: b, log: logger}
			}},
		},
		GRPCServer: plugin.DefaultGRPCServer,
		Logger:     logger,
	})
}
