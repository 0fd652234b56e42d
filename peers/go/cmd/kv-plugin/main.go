// Command kv-plugin is a go-plugin gRPC plugin serving the KV service from an
// in-memory map.
//
// TLS: go-plugin AutoMTLS when the host sends PLUGIN_CLIENT_CERT (the default
// path), or manual TLS when RPCPLUGIN_KV_TLS_CERT, RPCPLUGIN_KV_TLS_KEY and
// RPCPLUGIN_KV_TLS_CA are all set (server cert/key, CA that must have signed
// the host's client cert). The transport is whatever go-plugin uses on this
// OS (a unix socket on Linux); RPCPLUGIN_KV_TRANSPORT=tcp cannot be honoured
// and only produces a warning.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
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
	log hclog.Logger
	mu  sync.Mutex
	m   map[string][]byte
}

func (s *store) Put(_ context.Context, req *proto.PutRequest) (*proto.Empty, error) {
	s.mu.Lock()
	s.m[req.Key] = append([]byte(nil), req.Value...)
	s.mu.Unlock()
	s.log.Info("put", "key", req.Key, "bytes", len(req.Value))
	return &proto.Empty{}, nil
}

func (s *store) Get(_ context.Context, req *proto.GetRequest) (*proto.GetResponse, error) {
	s.mu.Lock()
	v, ok := s.m[req.Key]
	s.mu.Unlock()
	s.log.Info("get", "key", req.Key, "found", ok, "bytes", len(v))
	return &proto.GetResponse{Value: v}, nil
}

// manualTLS builds the server tls.Config from the RPCPLUGIN_KV_TLS_* files.
// It returns nil, nil when none of the variables is set.
func manualTLS() (*tls.Config, error) {
	certFile := os.Getenv("RPCPLUGIN_KV_TLS_CERT")
	keyFile := os.Getenv("RPCPLUGIN_KV_TLS_KEY")
	caFile := os.Getenv("RPCPLUGIN_KV_TLS_CA")
	if certFile == "" && keyFile == "" && caFile == "" {
		return nil, nil
	}
	if certFile == "" || keyFile == "" || caFile == "" {
		return nil, fmt.Errorf("RPCPLUGIN_KV_TLS_CERT, RPCPLUGIN_KV_TLS_KEY and RPCPLUGIN_KV_TLS_CA must be set together")
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("loading server cert/key: %w", err)
	}
	caPEM, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("reading CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("no certificate found in %s", caFile)
	}
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientCAs:    pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		MinVersion:   tls.VersionTLS12,
	}, nil
}

func main() {
	logger := hclog.New(&hclog.LoggerOptions{
		Name:       "kv-plugin",
		Level:      hclog.Info,
		Output:     os.Stderr,
		JSONFormat: true,
	})

	if t := os.Getenv("RPCPLUGIN_KV_TRANSPORT"); t != "" && t != "unix" {
		logger.Warn("go-plugin only serves unix sockets on this OS; ignoring requested transport", "requested", t)
	}

	cfg := &plugin.ServeConfig{
		HandshakeConfig: kvshared.Handshake,
		Plugins: plugin.PluginSet{
			kvshared.PluginName: &kvshared.KVPlugin{Impl: &store{log: logger, m: map[string][]byte{}}},
		},
		GRPCServer: func(opts []grpc.ServerOption) *grpc.Server {
			opts = append(opts,
				grpc.MaxRecvMsgSize(kvshared.MaxMsgSize),
				grpc.MaxSendMsgSize(kvshared.MaxMsgSize))
			return grpc.NewServer(opts...)
		},
		Logger: logger,
	}

	tlsCfg, err := manualTLS()
	if err != nil {
		// Nothing has been written to stdout yet, so the host sees a plain
		// startup failure and this line in its logs.
		fmt.Fprintf(os.Stderr, "kv-plugin: manual TLS: %v\n", err)
		os.Exit(1)
	}
	if tlsCfg != nil {
		logger.Info("manual TLS enabled (TLSProvider); AutoMTLS is bypassed")
		cfg.TLSProvider = func() (*tls.Config, error) { return tlsCfg, nil }
	}

	plugin.Serve(cfg)
}
