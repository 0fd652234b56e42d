// Command broker-host is a go-plugin (v1.8.0) host for the matrix's broker
// and lifecycle cells, with the same command line and output as the Rust
// host crates/tests/src/bin/rpcplugin-broker-host.rs:
//
//	broker-host --plugin PATH --scenario S [--tls off|auto] [--cookie K=V] [--timeout-ms N]
//
// Scenarios: plugin-serves (the plugin serves a brokered KV server, the
// host dials it through GRPCBroker.Dial), host-serves (the host serves one
// with GRPCBroker.AcceptAndServe, the plugin dials it), exit-status (the
// plugin exits with status 7 mid-call; go-plugin must notice through
// Exited and log it), managed-stop (a Managed client stopped by
// CleanupClients) and hold (print the plugin's pid, wait to be killed;
// the plugin is launched without a parent-death signal, so what happens to
// it when this host is SIGKILLed is the plugin's own doing).
//
// It prints exactly one JSON line on stdout: {"client":"go","ok":...,
// "error":...,"scenario":...,"tls_mode":...,"detail":...}.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"github.com/hashicorp/go-plugin/examples/grpc/proto"
	"google.golang.org/grpc"

	"github.com/rpcplugin/rpcplugin/peers/go/internal/brokershared"
)

var emitOnce sync.Once

// finish prints the JSON line once and exits (0 if ok, else 1).
func finish(scenario, tlsMode string, detail any, errMsg string) {
	emitOnce.Do(func() {
		line := map[string]any{
			"client":   "go",
			"ok":       errMsg == "",
			"error":    nil,
			"scenario": scenario,
			"tls_mode": tlsMode,
			"detail":   detail,
		}
		if errMsg != "" {
			line["error"] = strings.ReplaceAll(errMsg, "\n", "; ")
		}
		b, err := json.Marshal(line)
		if err != nil {
			b = []byte(`{"client":"go","ok":false,"error":"json encoding failed"}`)
		}
		os.Stdout.Write(append(b, '\n'))
		if errMsg == "" {
			os.Exit(0)
		}
		os.Exit(1)
	})
	select {}
}

func main() {
	fs := flag.NewFlagSet("broker-host", flag.ContinueOnError)
	fs.SetOutput(os.Stderr)
	pluginPath := fs.String("plugin", "", "plugin executable (required)")
	scenario := fs.String("scenario", "", "plugin-serves|host-serves|exit-status|managed-stop|hold")
	tlsMode := fs.String("tls", "auto", "off|auto")
	cookie := fs.String("cookie", "", "magic cookie KEY=VALUE (default: the test plugin's)")
	timeoutMs := fs.Int("timeout-ms", 15000, "overall deadline in milliseconds")
	if err := fs.Parse(os.Args[1:]); err != nil {
		finish(*scenario, *tlsMode, nil, "usage: "+err.Error())
	}
	if *pluginPath == "" || *scenario == "" {
		finish(*scenario, *tlsMode, nil, "usage: --plugin and --scenario are required")
	}
	handshake := brokershared.Handshake
	if *cookie != "" {
		k, v, ok := strings.Cut(*cookie, "=")
		if !ok {
			finish(*scenario, *tlsMode, nil, "usage: --cookie KEY=VALUE")
		}
		handshake.MagicCookieKey, handshake.MagicCookieValue = k, v
	}
	var autoMTLS bool
	switch *tlsMode {
	case "off":
	case "auto":
		autoMTLS = true
	default:
		finish(*scenario, *tlsMode, nil, fmt.Sprintf("usage: unknown --tls %q", *tlsMode))
	}
	done := func(detail any, err error) {
		if err != nil {
			finish(*scenario, *tlsMode, detail, err.Error())
		}
		finish(*scenario, *tlsMode, detail, "")
	}

	timeout := time.Duration(*timeoutMs) * time.Millisecond
	if *scenario != "hold" {
		time.AfterFunc(timeout, func() {
			plugin.CleanupClients()
			done(nil, fmt.Errorf("timeout: no result within %d ms", *timeoutMs))
		})
	}
	logger := hclog.New(&hclog.LoggerOptions{Name: "broker-host", Output: os.Stderr, Level: hclog.Info})
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  handshake,
		Plugins:          plugin.PluginSet{brokershared.PluginName: &brokershared.KVPlugin{}},
		Cmd:              exec.Command(*pluginPath),
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:         autoMTLS,
		StartTimeout:     timeout,
		Logger:           logger,
		Stderr:           io.Discard,
		Managed:          true,
	})
	defer plugin.CleanupClients()
	rpc, err := client.Client()
	if err != nil {
		client.Kill()
		done(nil, fmt.Errorf("start: %w", err))
	}
	raw, err := rpc.Dispense(brokershared.PluginName)
	if err != nil {
		client.Kill()
		done(nil, fmt.Errorf("dispense: %w", err))
	}
	host := raw.(*brokershared.Host)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()

	var detail any
	switch *scenario {
	case "plugin-serves":
		detail, err = pluginServes(ctx, host)
	case "host-serves":
		detail, err = hostServes(ctx, host)
	case "exit-status":
		detail, err = exitStatus(ctx, host, client)
		done(detail, err)
	case "managed-stop":
		plugin.CleanupClients()
		if !client.Exited() {
			err = errors.New("CleanupClients returned with the plugin still running")
		}
		done(map[string]any{"exited": client.Exited()}, err)
	case "hold":
		hold(ctx, host)
	default:
		err = fmt.Errorf("usage: unknown --scenario %q", *scenario)
	}
	client.Kill()
	done(detail, err)
}

func pluginServes(ctx context.Context, host *brokershared.Host) (any, error) {
	got, err := host.KV.Get(ctx, &proto.GetRequest{Key: brokershared.ServeBroker})
	if err != nil {
		return nil, fmt.Errorf("get %q: %w", brokershared.ServeBroker, err)
	}
	id, err := strconv.ParseUint(string(got.Value), 10, 32)
	if err != nil {
		return nil, fmt.Errorf("the plugin answered %q with %q, not a broker id", brokershared.ServeBroker, got.Value)
	}
	conn, err := host.Broker.Dial(uint32(id))
	if err != nil {
		return nil, fmt.Errorf("dial broker id %d: %w", id, err)
	}
	defer conn.Close()
	greeting, err := proto.NewKVClient(conn).Get(ctx, &proto.GetRequest{Key: brokershared.Greeting})
	if err != nil {
		return nil, fmt.Errorf("get on broker id %d: %w", id, err)
	}
	if string(greeting.Value) != brokershared.GreetingValue {
		return nil, fmt.Errorf("value mismatch: the brokered server held %q", greeting.Value)
	}
	return map[string]any{"broker_id": id}, nil
}

func hostServes(ctx context.Context, host *brokershared.Host) (any, error) {
	store := brokershared.NewMemory()
	id := host.Broker.NextId()
	go host.Broker.AcceptAndServe(id, func(opts []grpc.ServerOption) *grpc.Server {
		s := grpc.NewServer(opts...)
		proto.RegisterKVServer(s, store)
		return s
	})
	message := fmt.Sprintf("written through broker id %d", id)
	_, err := host.KV.Put(ctx, &proto.PutRequest{Key: fmt.Sprintf("%s%d", brokershared.DialPrefix, id), Value: []byte(message)})
	if err != nil {
		return nil, fmt.Errorf("put asking the plugin to dial broker id %d: %w", id, err)
	}
	got, _ := store.Get(ctx, &proto.GetRequest{Key: brokershared.FromPlugin})
	if string(got.Value) != message {
		return nil, fmt.Errorf("the plugin never wrote into the host's brokered server %d (found %q)", id, got.Value)
	}
	return map[string]any{"broker_id": id}, nil
}

// exitStatus asks the plugin to exit with status 7 and waits until
// go-plugin reports the process gone (Exited); go-plugin logs the status
// ("plugin process exited ... exit status 7") at error level.
func exitStatus(ctx context.Context, host *brokershared.Host, client *plugin.Client) (any, error) {
	_, callErr := host.KV.Put(ctx, &proto.PutRequest{Key: brokershared.Exit, Value: []byte("7")})
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !client.Exited() {
		select {
		case <-ctx.Done():
			return nil, errors.New("go-plugin never reported the plugin as exited")
		case <-tick.C:
		}
	}
	detail := map[string]any{"exited": true}
	if callErr != nil {
		detail["call_error"] = callErr.Error()
	}
	return detail, nil
}

// hold prints the plugin's pid as the JSON line and waits to be killed.
func hold(ctx context.Context, host *brokershared.Host) {
	got, err := host.KV.Get(ctx, &proto.GetRequest{Key: brokershared.Pid})
	if err != nil {
		finish("hold", "", nil, "get pid: "+err.Error())
	}
	pid, err := strconv.Atoi(string(got.Value))
	if err != nil {
		finish("hold", "", nil, fmt.Sprintf("the plugin answered pid with %q", got.Value))
	}
	b, _ := json.Marshal(map[string]any{"client": "go", "ok": true, "error": nil, "plugin_pid": pid})
	os.Stdout.Write(append(b, '\n'))
	select {}
}
