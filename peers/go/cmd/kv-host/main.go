// Command kv-host is a go-plugin host for the KV plugin. It implements the
// CLI contract in peers/CONTRACT.md: launch the plugin, Put, Get, check the
// value, kill the plugin and print exactly one JSON line on stdout.
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"github.com/hashicorp/go-plugin/examples/grpc/proto"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"

	"github.com/rpcplugin/rpcplugin/peers/go/internal/brokershared"
	"github.com/rpcplugin/rpcplugin/peers/go/internal/kvshared"
)

// result is the one JSON line of the contract. Field order is the contract's.
type result struct {
	Client          string   `json:"client"`
	OK              bool     `json:"ok"`
	Error           *string  `json:"error"`
	ProtocolVersion *int     `json:"protocol_version"`
	Transport       *string  `json:"transport"`
	Address         *string  `json:"address"`
	TLSMode         string   `json:"tls_mode"`
	TLSVersion      *string  `json:"tls_version"`
	Cipher          *string  `json:"cipher"`
	PeerKeyType     *string  `json:"peer_key_type"`
	HostKeyType     *string  `json:"host_key_type"`
	ValueOK         *bool    `json:"value_ok"`
	StartMs         *float64 `json:"start_ms"`
	FirstRPCMs      *float64 `json:"first_rpc_ms"`
	TotalMs         *float64 `json:"total_ms"`
}

var (
	emitOnce sync.Once
	resMu    sync.Mutex
	res      = result{Client: "go", TLSMode: "auto"}
)

func ptr[T any](v T) *T { return &v }

func ms(d time.Duration) *float64 {
	v := float64(d.Microseconds()) / 1000.0
	return ptr(math.Round(v*1000) / 1000)
}

// oneLine collapses an error message to one line.
func oneLine(s string) string {
	parts := strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == '\r' })
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}
	out := strings.Join(parts, "; ")
	if out == "" {
		out = "unknown error"
	}
	return out
}

// finish prints the JSON line once and exits (0 if ok, else 1). It is safe to
// call from the watchdog and from main concurrently: only the first call wins.
func finish(errMsg string) {
	emitOnce.Do(func() {
		resMu.Lock()
		r := res
		resMu.Unlock()
		if errMsg != "" {
			r.OK = false
			r.Error = ptr(oneLine(errMsg))
		} else {
			r.OK = true
			r.Error = nil
		}
		b, err := json.Marshal(r)
		if err != nil {
			b = []byte(`{"client":"go","ok":false,"error":"json encoding failed"}`)
			r.OK = false
		}
		os.Stdout.Write(append(b, '\n'))
		if r.OK {
			os.Exit(0)
		}
		os.Exit(1)
	})
	// Another goroutine is emitting; it will exit the process.
	select {}
}

func keyTypeName(pub any) string {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		return k.Curve.Params().Name // "P-256", "P-384", "P-521"
	case *rsa.PublicKey:
		return fmt.Sprintf("RSA-%d", k.N.BitLen())
	case ed25519.PublicKey:
		return "Ed25519"
	default:
		return fmt.Sprintf("%T", pub)
	}
}

func tlsVersionName(v uint16) string {
	switch v {
	case tls.VersionTLS10:
		return "TLS1.0"
	case tls.VersionTLS11:
		return "TLS1.1"
	case tls.VersionTLS12:
		return "TLS1.2"
	case tls.VersionTLS13:
		return "TLS1.3"
	}
	return fmt.Sprintf("0x%04x", v)
}

// wantKeyType maps the --key-type flag to the key type name we report.
var wantKeyType = map[string]string{
	"p256":    "P-256",
	"p384":    "P-384",
	"p521":    "P-521",
	"rsa2048": "RSA-2048",
}

// hostCertFromEnv finds the PEM cert go-plugin put into the plugin's
// environment (PLUGIN_CLIENT_CERT) and returns its key type.
func hostCertFromEnv(env []string) (string, error) {
	const prefix = "PLUGIN_CLIENT_CERT="
	for i := len(env) - 1; i >= 0; i-- {
		if !strings.HasPrefix(env[i], prefix) {
			continue
		}
		block, _ := pem.Decode([]byte(strings.TrimPrefix(env[i], prefix)))
		if block == nil {
			return "", errors.New("PLUGIN_CLIENT_CERT is not PEM")
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return "", err
		}
		return keyTypeName(c.PublicKey), nil
	}
	return "", errors.New("no PLUGIN_CLIENT_CERT in the plugin environment")
}

// startClient runs client.Client() and turns a panic inside go-plugin into an
// error. go-plugin v1.8.0 dereferences a nil TLSConfig when the host runs
// without TLS and the plugin still announces a certificate in handshake field
// 6 (Client.loadServerCert); go-plugin has already killed the plugin process
// by the time the panic reaches here.
func startClient(client *plugin.Client) (c plugin.ClientProtocol, err error) {
	defer func() {
		if r := recover(); r != nil {
			c, err = nil, fmt.Errorf("go-plugin panicked: %v", r)
		}
	}()
	return client.Client()
}

// recordHandshake copies what the launch and handshake produced into res.
func recordHandshake(client *plugin.Client, cmd *exec.Cmd, autoMTLS bool) {
	resMu.Lock()
	defer resMu.Unlock()
	if autoMTLS && cmd.Env != nil {
		if kt, err := hostCertFromEnv(cmd.Env); err == nil {
			res.HostKeyType = ptr(kt)
		}
	}
	if rc := client.ReattachConfig(); rc != nil && rc.Addr != nil {
		res.ProtocolVersion = ptr(client.NegotiatedVersion())
		res.Transport = ptr(rc.Addr.Network())
		res.Address = ptr(rc.Addr.String())
	}
}

func main() {
	fs := flag.NewFlagSet("kv-host", flag.ContinueOnError)
	fs.SetOutput(os.Stderr)
	pluginPath := fs.String("plugin", "", "path of the plugin executable (required)")
	tlsMode := fs.String("tls", "auto", "off|auto|manual")
	keyType := fs.String("key-type", "auto", "auto|p256|p384|p521|rsa2048")
	certFile := fs.String("cert", "", "manual TLS: host client certificate (PEM)")
	keyFile := fs.String("key", "", "manual TLS: host client key (PEM)")
	caFile := fs.String("ca", "", "manual TLS: CA that signed the plugin's server certificate (PEM)")
	putKey := fs.String("put-key", "hello", "key to Put and Get")
	putValue := fs.String("put-value", "world", "value to Put")
	timeoutMs := fs.Int("timeout-ms", 15000, "overall deadline in milliseconds")
	mux := fs.Bool("mux", false, "ask for gRPC broker multiplexing (GRPCBrokerMultiplex)")
	brokered := fs.Bool("broker", false, "also make brokered calls in both directions (needs a plugin with the Rust test plugin's commands and cookie, e.g. broker-plugin)")
	holdMs := fs.Int("hold-ms", 0, "after the exchange, keep the connection idle this long, then exchange again (crosses yamux keepalive pings)")
	if err := fs.Parse(os.Args[1:]); err != nil {
		finish("usage: " + err.Error())
	}
	res.TLSMode = *tlsMode
	if fs.NArg() > 0 {
		finish("usage: unexpected arguments: " + strings.Join(fs.Args(), " "))
	}
	if *pluginPath == "" {
		finish("usage: --plugin is required")
	}
	if *timeoutMs <= 0 {
		finish("usage: --timeout-ms must be positive")
	}
	if _, ok := wantKeyType[*keyType]; !ok && *keyType != "auto" {
		finish(fmt.Sprintf("usage: unknown --key-type %q", *keyType))
	}

	timeout := time.Duration(*timeoutMs) * time.Millisecond
	deadline := time.Now().Add(timeout)

	// The host logger receives go-plugin's own messages and the plugin's
	// hclog lines (re-logged at their level). stdout is reserved for JSON.
	level := hclog.Info
	if l := os.Getenv("RPCPLUGIN_KV_HOST_LOG"); l != "" {
		level = hclog.LevelFromString(l)
	}
	logger := hclog.New(&hclog.LoggerOptions{Name: "kv-host", Output: os.Stderr, Level: level})

	var tlsConfig *tls.Config
	autoMTLS := false
	switch *tlsMode {
	case "off":
	case "auto":
		// go-plugin's AutoMTLS always generates an ECDSA P-521 certificate;
		// there is no knob to choose the curve.
		if *keyType != "auto" && *keyType != "p521" {
			finish(fmt.Sprintf("unsupported: go-plugin AutoMTLS always uses a P-521 client certificate; --key-type %s cannot be honoured", *keyType))
		}
		autoMTLS = true
	case "manual":
		if *certFile == "" || *keyFile == "" || *caFile == "" {
			finish("usage: --tls manual needs --cert, --key and --ca")
		}
		cert, err := tls.LoadX509KeyPair(*certFile, *keyFile)
		if err != nil {
			finish("manual TLS: loading host cert/key: " + err.Error())
		}
		leaf, err := x509.ParseCertificate(cert.Certificate[0])
		if err != nil {
			finish("manual TLS: parsing host cert: " + err.Error())
		}
		hostKT := keyTypeName(leaf.PublicKey)
		if *keyType != "auto" && wantKeyType[*keyType] != hostKT {
			finish(fmt.Sprintf("unsupported: --key-type %s does not match the %s key of --cert", *keyType, hostKT))
		}
		res.HostKeyType = ptr(hostKT)
		caPEM, err := os.ReadFile(*caFile)
		if err != nil {
			finish("manual TLS: reading CA: " + err.Error())
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(caPEM) {
			finish("manual TLS: no certificate in " + *caFile)
		}
		tlsConfig = &tls.Config{
			Certificates: []tls.Certificate{cert},
			RootCAs:      pool,
			ServerName:   "localhost",
			MinVersion:   tls.VersionTLS12,
		}
	default:
		finish(fmt.Sprintf("usage: unknown --tls %q", *tlsMode))
	}

	// The plugin process is killed by exec when ctx is cancelled (watchdog),
	// and by the kernel if this process dies first.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	killed := make(chan struct{})
	cmd := exec.CommandContext(ctx, *pluginPath)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error {
		defer close(killed)
		return cmd.Process.Kill()
	}

	stage := "launch"
	var stageMu sync.Mutex
	setStage := func(s string) { stageMu.Lock(); stage = s; stageMu.Unlock() }

	watchdog := time.AfterFunc(timeout, func() {
		stageMu.Lock()
		s := stage
		stageMu.Unlock()
		cancel()
		select {
		case <-killed:
		case <-time.After(500 * time.Millisecond):
		}
		finish(fmt.Sprintf("timeout: no result within %d ms (stage: %s)", *timeoutMs, s))
	})
	defer watchdog.Stop()

	handshake := kvshared.Handshake
	var kvPlugin plugin.Plugin = &kvshared.KVPlugin{}
	if *brokered {
		handshake = brokershared.Handshake
		kvPlugin = &brokershared.KVPlugin{}
	}
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:     handshake,
		Plugins:             plugin.PluginSet{kvshared.PluginName: kvPlugin},
		GRPCBrokerMultiplex: *mux,
		Cmd:                 cmd,
		AllowedProtocols:    []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:            autoMTLS,
		TLSConfig:           tlsConfig,
		StartTimeout:        timeout,
		Logger:              logger,
		Stderr:              io.Discard,
		GRPCDialOptions: []grpc.DialOption{grpc.WithDefaultCallOptions(
			grpc.MaxCallRecvMsgSize(kvshared.MaxMsgSize),
			grpc.MaxCallSendMsgSize(kvshared.MaxMsgSize))},
	})

	fail := func(msg string) {
		setStage("kill after error")
		client.Kill()
		finish(msg)
	}

	t0 := time.Now()
	setStage("start")
	rpcClient, err := startClient(client)
	recordHandshake(client, cmd, autoMTLS)
	if err != nil {
		fail("start: " + err.Error())
	}

	raw, err := rpcClient.Dispense(kvshared.PluginName)
	if err != nil {
		fail("dispense: " + err.Error())
	}
	var kv proto.KVClient
	var broker *plugin.GRPCBroker
	switch d := raw.(type) {
	case proto.KVClient:
		kv = d
	case *brokershared.Host:
		kv, broker = d.KV, d.Broker
	}
	startD := time.Since(t0)
	resMu.Lock()
	res.StartMs = ms(startD)
	resMu.Unlock()

	rpcCtx, rpcCancel := context.WithDeadline(context.Background(), deadline)
	defer rpcCancel()

	setStage("put")
	var p peer.Peer
	if _, err := kv.Put(rpcCtx, &proto.PutRequest{Key: *putKey, Value: []byte(*putValue)}, grpc.Peer(&p)); err != nil {
		fail("put: " + err.Error())
	}
	firstD := time.Since(t0)
	resMu.Lock()
	res.FirstRPCMs = ms(firstD)
	if info, ok := p.AuthInfo.(credentials.TLSInfo); ok {
		st := info.State
		res.TLSVersion = ptr(tlsVersionName(st.Version))
		res.Cipher = ptr(tls.CipherSuiteName(st.CipherSuite))
		if len(st.PeerCertificates) > 0 {
			res.PeerKeyType = ptr(keyTypeName(st.PeerCertificates[0].PublicKey))
		}
	}
	resMu.Unlock()

	setStage("get")
	got, err := kv.Get(rpcCtx, &proto.GetRequest{Key: *putKey})
	if err != nil {
		fail("get: " + err.Error())
	}
	valueOK := string(got.Value) == *putValue
	resMu.Lock()
	res.ValueOK = ptr(valueOK)
	resMu.Unlock()

	if broker != nil {
		setStage("broker")
		if err := brokeredCalls(rpcCtx, kv, broker); err != nil {
			fail("broker: " + err.Error())
		}
	}
	if *holdMs > 0 {
		setStage("hold")
		time.Sleep(time.Duration(*holdMs) * time.Millisecond)
		setStage("after hold")
		if _, err := kv.Put(rpcCtx, &proto.PutRequest{Key: *putKey, Value: []byte(*putValue)}); err != nil {
			fail("put after hold: " + err.Error())
		}
		if broker != nil {
			if err := brokeredCalls(rpcCtx, kv, broker); err != nil {
				fail("broker after hold: " + err.Error())
			}
		}
	}

	setStage("kill")
	client.Kill()
	resMu.Lock()
	res.TotalMs = ms(time.Since(t0))
	resMu.Unlock()
	if !valueOK {
		finish(fmt.Sprintf("value mismatch: put %q, got %q", *putValue, string(got.Value)))
	}
	finish("")
}

// brokeredCalls makes one brokered call each way: the plugin serves and the
// host dials, then the host serves and the plugin dials back and writes.
func brokeredCalls(ctx context.Context, kv proto.KVClient, broker *plugin.GRPCBroker) error {
	got, err := kv.Get(ctx, &proto.GetRequest{Key: brokershared.ServeBroker})
	if err != nil {
		return fmt.Errorf("asking the plugin to serve: %w", err)
	}
	id, err := strconv.ParseUint(string(got.Value), 10, 32)
	if err != nil {
		return fmt.Errorf("the plugin answered %q, not a broker id", got.Value)
	}
	conn, err := broker.Dial(uint32(id))
	if err != nil {
		return fmt.Errorf("dialling the plugin's brokered server %d: %w", id, err)
	}
	greeting, err := proto.NewKVClient(conn).Get(ctx, &proto.GetRequest{Key: brokershared.Greeting})
	_ = conn.Close()
	if err != nil {
		return fmt.Errorf("calling the plugin's brokered server: %w", err)
	}
	if string(greeting.Value) != brokershared.GreetingValue {
		return fmt.Errorf("the plugin's brokered server answered %q", greeting.Value)
	}

	store := brokershared.NewMemory()
	hostID := broker.NextId()
	go broker.AcceptAndServe(hostID, store.Serve)
	want := fmt.Sprintf("from-go-host-%d", time.Now().UnixNano())
	key := fmt.Sprintf("%s%d", brokershared.DialPrefix, hostID)
	if _, err := kv.Put(ctx, &proto.PutRequest{Key: key, Value: []byte(want)}); err != nil {
		return fmt.Errorf("asking the plugin to dial the host's server %d: %w", hostID, err)
	}
	wrote := string(store.Value(brokershared.FromPlugin))
	if wrote != want {
		return fmt.Errorf("the plugin wrote %q on the host's brokered server, want %q", wrote, want)
	}
	return nil
}
