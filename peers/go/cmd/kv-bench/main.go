// Command kv-bench is the go-plugin bench host: it launches a KV plugin (any
// language) with go-plugin's client and measures it, printing one JSON line
// on stdout. Flags and output fields are those of the Rust bench host
// (crates/bench/src/bin/kv-bench.rs):
//
//	kv-bench --plugin PATH [--plugin-arg ARG]... [--tls off|auto] [--mode cold|run]
//	         [--warmup-calls 200] [--latency-calls 10000] [--concurrency 1,16,64]
//	         [--throughput-ms 2000] [--bulk 1048576x20,67108864x4] [--idle-ms 200]
//	         [--timeout-ms 120000]
package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"github.com/hashicorp/go-plugin/examples/grpc/proto"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"

	"github.com/rpcplugin/rpcplugin/peers/go/internal/kvshared"
)

const (
	benchKey = "bench-key"
	small    = 16
)

var processStart = time.Now()

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, " ") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

type bulkItem struct{ size, reps int }

func parseInts(s string) ([]int, error) {
	var out []int
	for _, part := range strings.Split(s, ",") {
		if part == "" {
			continue
		}
		n, err := strconv.Atoi(part)
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, nil
}

func parseBulk(s string) ([]bulkItem, error) {
	var out []bulkItem
	for _, part := range strings.Split(s, ",") {
		if part == "" {
			continue
		}
		size, reps, ok := strings.Cut(part, "x")
		if !ok {
			return nil, fmt.Errorf("--bulk items are SIZExREPS, not %q", part)
		}
		a, err := strconv.Atoi(size)
		if err != nil {
			return nil, err
		}
		b, err := strconv.Atoi(reps)
		if err != nil {
			return nil, err
		}
		out = append(out, bulkItem{a, b})
	}
	return out, nil
}

func ms(d time.Duration) float64 { return math.Round(float64(d.Nanoseconds())/1e3) / 1e3 }
func us(d time.Duration) float64 { return math.Round(float64(d.Nanoseconds())/1e2) / 10 }
func round3(v float64) float64   { return math.Round(v*1000) / 1000 }

// percentile is the nearest-rank percentile of sorted samples.
func percentile(sorted []float64, p float64) float64 {
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	if rank < 1 {
		rank = 1
	}
	if rank > len(sorted) {
		rank = len(sorted)
	}
	return sorted[rank-1]
}

func summary(samples []float64) map[string]any {
	sort.Float64s(samples)
	if len(samples) == 0 {
		return map[string]any{"n": 0}
	}
	sum := 0.0
	for _, v := range samples {
		sum += v
	}
	return map[string]any{
		"n":    len(samples),
		"min":  round3(samples[0]),
		"p50":  round3(percentile(samples, 50)),
		"p90":  round3(percentile(samples, 90)),
		"p99":  round3(percentile(samples, 99)),
		"max":  round3(samples[len(samples)-1]),
		"mean": round3(sum / float64(len(samples))),
	}
}

// statusKB reads a kB field (VmRSS, VmHWM) of /proc/<pid>/status; pid 0
// reads this process. nil when unavailable.
func statusKB(pid int, field string) any {
	path := "/proc/self/status"
	if pid != 0 {
		path = fmt.Sprintf("/proc/%d/status", pid)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			fields := strings.Fields(rest)
			if len(fields) > 0 {
				if n, err := strconv.ParseUint(fields[0], 10, 64); err == nil {
					return n
				}
			}
		}
	}
	return nil
}

func emit(report map[string]any) {
	report["host"] = "go"
	report["process_ms"] = ms(time.Since(processStart))
	b, err := json.Marshal(report)
	if err != nil {
		b = []byte(`{"host":"go","ok":false,"error":"json encoding failed"}`)
	}
	os.Stdout.Write(append(b, '\n'))
	if ok, _ := report["ok"].(bool); ok {
		os.Exit(0)
	}
	os.Exit(1)
}

func fail(report map[string]any, err error) {
	report["ok"] = false
	report["error"] = strings.ReplaceAll(err.Error(), "\n", "; ")
	emit(report)
}

func main() {
	fs := flag.NewFlagSet("kv-bench", flag.ContinueOnError)
	fs.SetOutput(os.Stderr)
	pluginPath := fs.String("plugin", "", "plugin executable (required)")
	var pluginArgs multiFlag
	fs.Var(&pluginArgs, "plugin-arg", "argument for the plugin (repeatable)")
	tlsMode := fs.String("tls", "auto", "off|auto")
	mode := fs.String("mode", "run", "cold|run")
	warmup := fs.Int("warmup-calls", 200, "untimed Gets before the latency run")
	latencyCalls := fs.Int("latency-calls", 10000, "sequential Gets timed one by one")
	concurrency := fs.String("concurrency", "1,16,64", "calls in flight for the throughput runs")
	throughputMs := fs.Int("throughput-ms", 2000, "duration of each throughput run")
	bulk := fs.String("bulk", "1048576x20,67108864x4", "SIZExREPS of the bulk Put/Get runs")
	idleMs := fs.Int("idle-ms", 200, "pause before the idle RSS reading")
	timeoutMs := fs.Int("timeout-ms", 120000, "overall deadline")
	mux := fs.Bool("mux", false, "ask for gRPC broker multiplexing (GRPCBrokerMultiplex)")
	report := map[string]any{"ok": false, "error": nil, "mode": "run", "tls": "auto"}
	if err := fs.Parse(os.Args[1:]); err != nil {
		fail(report, fmt.Errorf("usage: %w", err))
	}
	report["mode"] = *mode
	report["tls"] = *tlsMode
	levels, err := parseInts(*concurrency)
	if err != nil {
		fail(report, fmt.Errorf("usage: --concurrency: %w", err))
	}
	bulkItems, err := parseBulk(*bulk)
	if err != nil {
		fail(report, fmt.Errorf("usage: %w", err))
	}
	if *pluginPath == "" {
		fail(report, errors.New("usage: --plugin is required"))
	}
	if *mode != "cold" && *mode != "run" {
		fail(report, fmt.Errorf("usage: --mode %s is not supported by this host", *mode))
	}
	timeout := time.Duration(*timeoutMs) * time.Millisecond
	time.AfterFunc(timeout, func() { fail(report, fmt.Errorf("timeout: no result within %v", timeout)) })

	cmd := exec.Command(*pluginPath, pluginArgs...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	logger := hclog.New(&hclog.LoggerOptions{Name: "kv-bench", Output: os.Stderr, Level: hclog.Info})
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:     kvshared.Handshake,
		Plugins:             plugin.PluginSet{kvshared.PluginName: &kvshared.KVPlugin{}},
		Cmd:                 cmd,
		AllowedProtocols:    []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:            *tlsMode == "auto",
		StartTimeout:        timeout,
		GRPCBrokerMultiplex: *mux,
		Logger:              logger,
		Stderr:              io.Discard,
		GRPCDialOptions: []grpc.DialOption{grpc.WithDefaultCallOptions(
			grpc.MaxCallRecvMsgSize(kvshared.MaxMsgSize),
			grpc.MaxCallSendMsgSize(kvshared.MaxMsgSize))},
	})
	defer client.Kill()

	t0 := time.Now()
	rpcClient, err := client.Client()
	if err != nil {
		client.Kill()
		fail(report, fmt.Errorf("start: %w", err))
	}
	raw, err := rpcClient.Dispense(kvshared.PluginName)
	if err != nil {
		client.Kill()
		fail(report, fmt.Errorf("dispense: %w", err))
	}
	kv := raw.(proto.KVClient)
	report["start_ms"] = ms(time.Since(t0))
	ctx := context.Background()
	var p peer.Peer
	value := make([]byte, small)
	for i := range value {
		value[i] = 0x5a
	}
	if _, err := kv.Put(ctx, &proto.PutRequest{Key: benchKey, Value: value}, grpc.Peer(&p)); err != nil {
		client.Kill()
		fail(report, fmt.Errorf("put: %w", err))
	}
	report["first_rpc_ms"] = ms(time.Since(t0))
	pid := 0
	if cmd.Process != nil {
		pid = cmd.Process.Pid
	}
	report["plugin_pid"] = pid
	report["tls_version"] = nil
	if info, ok := p.AuthInfo.(credentials.TLSInfo); ok {
		report["tls_version"] = strings.Replace(tls.VersionName(info.State.Version), " ", "", 1)
	}
	if *mode == "run" {
		if err := measure(ctx, kv, pid, report, *warmup, *latencyCalls, levels,
			time.Duration(*throughputMs)*time.Millisecond, bulkItems,
			time.Duration(*idleMs)*time.Millisecond); err != nil {
			client.Kill()
			fail(report, err)
		}
	}
	client.Kill()
	report["total_ms"] = ms(time.Since(t0))
	report["ok"] = true
	emit(report)
}

func measure(ctx context.Context, kv proto.KVClient, pid int, report map[string]any,
	warmup, latencyCalls int, levels []int, throughputDur time.Duration,
	bulk []bulkItem, idle time.Duration) error {
	time.Sleep(idle)
	rss := map[string]any{
		"plugin_idle": statusKB(pid, "VmRSS"),
		"host_idle":   statusKB(0, "VmRSS"),
	}
	get := &proto.GetRequest{Key: benchKey}
	for i := 0; i < warmup; i++ {
		if _, err := kv.Get(ctx, get); err != nil {
			return fmt.Errorf("get: %w", err)
		}
	}
	samples := make([]float64, 0, latencyCalls)
	for i := 0; i < latencyCalls; i++ {
		t := time.Now()
		resp, err := kv.Get(ctx, get)
		samples = append(samples, us(time.Since(t)))
		if err != nil {
			return fmt.Errorf("get: %w", err)
		}
		if len(resp.Value) != small {
			return fmt.Errorf("value mismatch: got %d bytes", len(resp.Value))
		}
	}
	report["latency_us"] = summary(samples)

	var throughput []map[string]any
	for _, level := range levels {
		if level < 1 {
			level = 1
		}
		deadline := time.Now().Add(throughputDur)
		var calls atomic.Int64
		var firstErr atomic.Value
		var wg sync.WaitGroup
		t := time.Now()
		for w := 0; w < level; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				req := &proto.GetRequest{Key: benchKey}
				for time.Now().Before(deadline) {
					if _, err := kv.Get(ctx, req); err != nil {
						firstErr.CompareAndSwap(nil, err)
						return
					}
					calls.Add(1)
				}
			}()
		}
		wg.Wait()
		if err, ok := firstErr.Load().(error); ok {
			return fmt.Errorf("get: %w", err)
		}
		seconds := time.Since(t).Seconds()
		n := calls.Load()
		throughput = append(throughput, map[string]any{
			"concurrency": level,
			"calls":       n,
			"seconds":     math.Round(seconds*1e4) / 1e4,
			"calls_per_s": math.Round(float64(n) / seconds),
		})
	}
	report["throughput"] = throughput
	rss["plugin_peak_small"] = statusKB(pid, "VmHWM")
	rss["host_peak_small"] = statusKB(0, "VmHWM")

	var bulkOut []map[string]any
	for _, item := range bulk {
		value := make([]byte, item.size)
		for i := range value {
			value[i] = 0xa5
		}
		key := fmt.Sprintf("bulk-%d", item.size)
		put := &proto.PutRequest{Key: key, Value: value}
		getReq := &proto.GetRequest{Key: key}
		// One untimed round first.
		if _, err := kv.Put(ctx, put); err != nil {
			return fmt.Errorf("bulk put: %w", err)
		}
		if _, err := kv.Get(ctx, getReq); err != nil {
			return fmt.Errorf("bulk get: %w", err)
		}
		var putS, getS float64
		for r := 0; r < item.reps; r++ {
			t := time.Now()
			if _, err := kv.Put(ctx, put); err != nil {
				return fmt.Errorf("bulk put: %w", err)
			}
			putS += time.Since(t).Seconds()
			t = time.Now()
			resp, err := kv.Get(ctx, getReq)
			if err != nil {
				return fmt.Errorf("bulk get: %w", err)
			}
			getS += time.Since(t).Seconds()
			if len(resp.Value) != item.size {
				return fmt.Errorf("bulk value mismatch: %d of %d bytes", len(resp.Value), item.size)
			}
		}
		mb := float64(item.size*item.reps) / 1e6
		bulkOut = append(bulkOut, map[string]any{
			"size":     item.size,
			"reps":     item.reps,
			"put_mb_s": math.Round(mb/putS*10) / 10,
			"get_mb_s": math.Round(mb/getS*10) / 10,
		})
	}
	report["bulk"] = bulkOut
	rss["plugin_after_bulk"] = statusKB(pid, "VmRSS")
	rss["plugin_peak"] = statusKB(pid, "VmHWM")
	rss["host_peak"] = statusKB(0, "VmHWM")
	report["rss_kb"] = rss
	return nil
}
