// Command broker-plugin is a go-plugin gRPC plugin serving the KV service
// with the Rust test plugin's command keys (see internal/brokershared):
// it serves and dials brokered connections through go-plugin's GRPCBroker,
// and can exit with a given status. TLS is go-plugin AutoMTLS when the host
// sends PLUGIN_CLIENT_CERT, plaintext otherwise.
package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"github.com/hashicorp/go-plugin/examples/grpc/proto"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/rpcplugin/rpcplugin/peers/go/internal/brokershared"
)

// commands is the KV store with command keys.
type commands struct {
	*brokershared.Memory
	broker *plugin.GRPCBroker
	log    hclog.Logger
}

func (c *commands) Get(ctx context.Context, req *proto.GetRequest) (*proto.GetResponse, error) {
	switch req.Key {
	case brokershared.ServeBroker:
		id := c.broker.NextId()
		served := brokershared.NewMemory()
		_, _ = served.Put(context.Background(), &proto.PutRequest{Key: brokershared.Greeting, Value: []byte(brokershared.GreetingValue)})
		go c.broker.AcceptAndServe(id, func(opts []grpc.ServerOption) *grpc.Server {
			s := grpc.NewServer(opts...)
			proto.RegisterKVServer(s, served)
			return s
		})
		c.log.Info("serving a brokered KV server", "id", id)
		return &proto.GetResponse{Value: []byte(strconv.FormatUint(uint64(id), 10))}, nil
	case brokershared.Pid:
		return &proto.GetResponse{Value: []byte(strconv.Itoa(os.Getpid()))}, nil
	}
	return c.Memory.Get(ctx, req)
}

func (c *commands) Put(ctx context.Context, req *proto.PutRequest) (*proto.Empty, error) {
	if req.Key == brokershared.Exit {
		code, err := strconv.Atoi(strings.TrimSpace(string(req.Value)))
		if err != nil {
			code = 1
		}
		os.Exit(code)
	}
	if rest, ok := strings.CutPrefix(req.Key, brokershared.DialPrefix); ok {
		id, err := strconv.ParseUint(rest, 10, 32)
		if err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "bad broker id %q", rest)
		}
		conn, err := c.broker.Dial(uint32(id))
		if err != nil {
			return nil, status.Errorf(codes.Internal, "dial broker id %d: %v", id, err)
		}
		defer conn.Close()
		callCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		_, err = proto.NewKVClient(conn).Put(callCtx, &proto.PutRequest{Key: brokershared.FromPlugin, Value: req.Value})
		if err != nil {
			return nil, status.Errorf(codes.Internal, "put into broker id %d: %v", id, err)
		}
		c.log.Info("wrote into the host's brokered server", "id", id)
		return &proto.Empty{}, nil
	}
	return c.Memory.Put(ctx, req)
}

func main() {
	logger := hclog.New(&hclog.LoggerOptions{
		Name:       "broker-plugin",
		Level:      hclog.Info,
		Output:     os.Stderr,
		JSONFormat: true,
	})
	if len(os.Args) > 1 {
		fmt.Fprintln(os.Stderr, "broker-plugin takes no arguments")
		os.Exit(2)
	}
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: brokershared.Handshake,
		Plugins: plugin.PluginSet{
			brokershared.PluginName: &brokershared.KVPlugin{Impl: func(b *plugin.GRPCBroker) proto.KVServer {
				return &commands{Memory: brokershared.NewMemory(), broker: b, log: logger}
			}},
		},
		GRPCServer: plugin.DefaultGRPCServer,
		Logger:     logger,
	})
}
