"""The pyvider-rpcplugin bench host: launches a KV plugin (any language) with
pyvider's RPCPluginClient and measures it, printing one JSON line on stdout.
Flags and output fields are those of the Rust bench host
(crates/bench/src/bin/kv-bench.rs):

    kv_bench_host.py --plugin PATH [--plugin-arg ARG]... [--tls off|auto] [--mode cold|run]
                     [--warmup-calls 200] [--latency-calls 10000] [--concurrency 1,16,64]
                     [--throughput-ms 2000] [--bulk 1048576x20,67108864x4] [--idle-ms 200]
                     [--timeout-ms 120000]

Run it with the venv made by setup.sh: .venv/bin/python kv_bench_host.py ...
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
import threading
import time

T_PROCESS = time.perf_counter()

# The one JSON line goes to the real stdout; anything else printed goes to stderr.
_JSON_OUT = os.fdopen(os.dup(1), "w", encoding="utf-8")
os.dup2(2, 1)
sys.stdout = sys.stderr

REPORT: dict[str, object] = {"host": "python", "ok": False, "error": None}
_emit_lock = threading.Lock()
_plugin_pid: int | None = None
MAX_MSG = 256 * 1024 * 1024
KEY = "bench-key"
SMALL = 16


def kill_plugin() -> None:
    if _plugin_pid is not None:
        try:
            os.kill(_plugin_pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def finish(error: str | None) -> None:
    if not _emit_lock.acquire(blocking=False):
        threading.Event().wait()
    REPORT["ok"] = error is None
    REPORT["error"] = None if error is None else "; ".join(str(error).splitlines())
    REPORT["process_ms"] = round((time.perf_counter() - T_PROCESS) * 1000.0, 3)
    _JSON_OUT.write(json.dumps(REPORT, separators=(",", ":")) + "\n")
    _JSON_OUT.flush()
    sys.stderr.flush()
    # Library threads may sit in blocking reads of the plugin's pipes.
    os._exit(0 if error is None else 1)


class _ArgParser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        finish(f"usage: {message}")


def parse_bulk(text: str) -> list[tuple[int, int]]:
    out = []
    for item in filter(None, text.split(",")):
        size, _, reps = item.partition("x")
        out.append((int(size), int(reps)))
    return out


p = _ArgParser(prog="kv_bench_host.py")
p.add_argument("--plugin", required=True)
p.add_argument("--plugin-arg", action="append", default=[])
p.add_argument("--tls", choices=["off", "auto"], default="auto")
p.add_argument("--mode", choices=["cold", "run"], default="run")
p.add_argument("--warmup-calls", type=int, default=200)
p.add_argument("--latency-calls", type=int, default=10000)
p.add_argument("--concurrency", default="1,16,64")
p.add_argument("--throughput-ms", type=int, default=2000)
p.add_argument("--bulk", default="1048576x20,67108864x4")
p.add_argument("--idle-ms", type=int, default=200)
p.add_argument("--timeout-ms", type=int, default=120000)
ARGS = p.parse_args()
REPORT["mode"] = ARGS.mode
REPORT["tls"] = ARGS.tls
try:
    LEVELS = [int(x) for x in ARGS.concurrency.split(",") if x]
    BULK = parse_bulk(ARGS.bulk)
except ValueError as exc:
    finish(f"usage: {exc}")

_timer = threading.Timer(ARGS.timeout_ms / 1000.0, lambda: (kill_plugin(), finish(
    f"timeout: no result within {ARGS.timeout_ms} ms")))
_timer.daemon = True
_timer.start()

os.environ.setdefault("PROVIDE_LOG_LEVEL", "WARNING")

import asyncio  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import kv_pb2  # noqa: E402
import kv_pb2_grpc  # noqa: E402
from pyvider.rpcplugin import RPCPluginClient, rpcplugin_config  # noqa: E402


class BenchClient(RPCPluginClient):
    def _get_channel_options(self):  # type: ignore[no-untyped-def]
        # pyvider's client keeps grpcio's 4 MiB receive limit; raise it to the
        # 256 MiB the plugins use.
        return super()._get_channel_options() + [
            ("grpc.max_receive_message_length", MAX_MSG),
            ("grpc.max_send_message_length", MAX_MSG),
        ]


def status_kb(pid: int | None, field: str) -> int | None:
    path = "/proc/self/status" if pid is None else f"/proc/{pid}/status"
    try:
        with open(path, encoding="ascii") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def percentile(sorted_samples: list[float], pct: float) -> float:
    rank = math.ceil(pct / 100.0 * len(sorted_samples))
    return sorted_samples[min(max(rank, 1), len(sorted_samples)) - 1]


def summary(samples: list[float]) -> dict[str, object]:
    samples.sort()
    if not samples:
        return {"n": 0}
    r = lambda v: round(v, 3)  # noqa: E731
    return {
        "n": len(samples),
        "min": r(samples[0]),
        "p50": r(percentile(samples, 50)),
        "p90": r(percentile(samples, 90)),
        "p99": r(percentile(samples, 99)),
        "max": r(samples[-1]),
        "mean": r(sum(samples) / len(samples)),
    }


def configure() -> None:
    c = rpcplugin_config
    c.plugin_magic_cookie_key = "BASIC_PLUGIN"
    c.plugin_magic_cookie_value = "hello"
    c.plugin_client_retry_enabled = False
    c.plugin_client_max_retries = 0
    c.plugin_grpc_grace_period = 0.2
    c.plugin_auto_mtls = ARGS.tls == "auto"
    c.plugin_client_cert = None
    c.plugin_client_key = None


async def measure(stub: kv_pb2_grpc.KVStub) -> None:
    await asyncio.sleep(ARGS.idle_ms / 1000.0)
    rss: dict[str, object] = {
        "plugin_idle": status_kb(_plugin_pid, "VmRSS"),
        "host_idle": status_kb(None, "VmRSS"),
    }
    get = kv_pb2.GetRequest(key=KEY)
    for _ in range(ARGS.warmup_calls):
        await stub.Get(get)
    samples = []
    clock = time.perf_counter
    for _ in range(ARGS.latency_calls):
        t = clock()
        resp = await stub.Get(get)
        samples.append(round((clock() - t) * 1e6, 1))
        if len(resp.value) != SMALL:
            raise RuntimeError(f"value mismatch: got {len(resp.value)} bytes")
    REPORT["latency_us"] = summary(samples)

    throughput = []
    for level in LEVELS:
        deadline = clock() + ARGS.throughput_ms / 1000.0

        async def worker() -> int:
            calls = 0
            while clock() < deadline:
                await stub.Get(get)
                calls += 1
            return calls

        t = clock()
        counts = await asyncio.gather(*(worker() for _ in range(max(1, level))))
        seconds = clock() - t
        throughput.append({
            "concurrency": level,
            "calls": sum(counts),
            "seconds": round(seconds, 4),
            "calls_per_s": round(sum(counts) / seconds),
        })
    REPORT["throughput"] = throughput
    rss["plugin_peak_small"] = status_kb(_plugin_pid, "VmHWM")
    rss["host_peak_small"] = status_kb(None, "VmHWM")

    bulk = []
    for size, reps in BULK:
        value = b"\xa5" * size
        key = f"bulk-{size}"
        put = kv_pb2.PutRequest(key=key, value=value)
        getb = kv_pb2.GetRequest(key=key)
        await stub.Put(put)
        await stub.Get(getb)
        put_s = get_s = 0.0
        for _ in range(reps):
            t = clock()
            await stub.Put(put)
            put_s += clock() - t
            t = clock()
            resp = await stub.Get(getb)
            get_s += clock() - t
            if len(resp.value) != size:
                raise RuntimeError(f"bulk value mismatch: {len(resp.value)} of {size} bytes")
        mb = size * reps / 1e6
        bulk.append({"size": size, "reps": reps,
                     "put_mb_s": round(mb / put_s, 1), "get_mb_s": round(mb / get_s, 1)})
    REPORT["bulk"] = bulk
    rss["plugin_after_bulk"] = status_kb(_plugin_pid, "VmRSS")
    rss["plugin_peak"] = status_kb(_plugin_pid, "VmHWM")
    rss["host_peak"] = status_kb(None, "VmHWM")
    REPORT["rss_kb"] = rss


async def run() -> None:
    global _plugin_pid
    configure()
    command = [os.path.abspath(ARGS.plugin)] + list(ARGS.plugin_arg)
    client = BenchClient(command=command, config=None)
    t0 = time.perf_counter()
    await client.start()
    REPORT["start_ms"] = round((time.perf_counter() - t0) * 1000.0, 3)
    proc = getattr(client, "_process", None)
    _plugin_pid = getattr(proc, "pid", None)
    REPORT["plugin_pid"] = _plugin_pid
    REPORT["tls_version"] = None
    stub = kv_pb2_grpc.KVStub(client.grpc_channel)
    await stub.Put(kv_pb2.PutRequest(key=KEY, value=b"\x5a" * SMALL))
    REPORT["first_rpc_ms"] = round((time.perf_counter() - t0) * 1000.0, 3)
    error = None
    if ARGS.mode == "run":
        try:
            await measure(stub)
        except Exception as exc:  # reported in the JSON line
            error = f"{type(exc).__name__}: {exc}"
    try:
        await asyncio.wait_for(client.shutdown_plugin(), timeout=2.0)
        await asyncio.wait_for(client.close(), timeout=3.0)
    except Exception as exc:
        sys.stderr.write(f"kv_bench_host: shutdown: {type(exc).__name__}: {exc}\n")
    kill_plugin()
    REPORT["total_ms"] = round((time.perf_counter() - t0) * 1000.0, 3)
    finish(error)


def main() -> None:
    try:
        asyncio.run(run())
    except BaseException as exc:  # never a traceback on stdout
        kill_plugin()
        finish(f"{type(exc).__name__}: {exc}")


if __name__ == "__main__":
    main()
