"""KV host driven by pyvider-rpcplugin's RPCPluginClient.

Implements the CLI contract of peers/CONTRACT.md: launch the plugin, Put, Get,
check the value, shut the plugin down and print exactly one JSON line on
stdout (exit 0 if ok, else 1). Run it through the `kv-host` wrapper next to
this file, which uses the venv made by setup.sh.

Where pyvider has no knob for something the contract needs, this file fills
the gap in an RPCPluginClient subclass and says so:
  * manual TLS: pyvider's client only trusts the certificate announced in the
    handshake line; it has no CA setting. --tls manual therefore builds the
    channel credentials itself (trust --ca, present --cert/--key, server name
    `localhost`).
  * fail fast: pyvider retries channel creation 3 times (a fixed decorator);
    a channel that does not become ready is reported at once instead, with the
    gRPC reason obtained from one probe RPC.
  * the end of the plugin's GRPCStdio stream: pyvider logs a warning when the
    stream ends with UNAVAILABLE, which is how every stop ends it (the plugin
    process exits with the stream open). go-plugin's host treats EOF,
    UNAVAILABLE, CANCELLED and UNIMPLEMENTED as the normal end of the stream;
    this host does the same, and still warns on any other status.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time

T0_PROCESS = time.perf_counter()

# Everything printed by accident (by us or a library) goes to stderr; the one
# JSON line goes to the saved real stdout.
_JSON_OUT = os.fdopen(os.dup(1), "w", encoding="utf-8")
os.dup2(2, 1)
sys.stdout = sys.stderr

RESULT: dict[str, object] = {
    "client": "python",
    "ok": False,
    "error": None,
    "protocol_version": None,
    "transport": None,
    "address": None,
    "tls_mode": "auto",
    "tls_version": None,
    "cipher": None,
    "peer_key_type": None,
    "host_key_type": None,
    "value_ok": None,
    "start_ms": None,
    "first_rpc_ms": None,
    "total_ms": None,
}
_emit_lock = threading.Lock()
_plugin_pid: int | None = None
_stage = "init"

CURVES = {"p256": "secp256r1", "p384": "secp384r1", "p521": "secp521r1"}
KEY_TYPE_NAMES = {"p256": "P-256", "p384": "P-384", "p521": "P-521", "rsa2048": "RSA-2048"}


def one_line(msg: str) -> str:
    parts = [p.strip() for p in str(msg).splitlines() if p.strip()]
    return "; ".join(parts) or "unknown error"


def kill_plugin() -> None:
    pid = _plugin_pid
    if pid is None:
        return
    try:
        os.kill(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def finish(error: str | None) -> None:
    """Print the JSON line once and end the process (0 if ok, else 1)."""
    if not _emit_lock.acquire(blocking=False):
        # Someone else is emitting and will end the process.
        threading.Event().wait()
    RESULT["ok"] = error is None
    RESULT["error"] = None if error is None else one_line(error)
    try:
        _JSON_OUT.write(json.dumps(RESULT, separators=(",", ":")) + "\n")
        _JSON_OUT.flush()
    finally:
        # os._exit: executor threads of the library may still sit in blocking
        # reads of the plugin's pipes; a normal exit would wait for them.
        sys.stderr.flush()
        os._exit(0 if error is None else 1)


def ms_since(t0: float) -> float:
    return round((time.perf_counter() - t0) * 1000.0, 3)


class _ArgParser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        finish(f"usage: {message}")


def parse_args() -> argparse.Namespace:
    p = _ArgParser(prog="kv-host", description="pyvider-rpcplugin KV host (peers/CONTRACT.md)")
    p.add_argument("--plugin", required=True)
    p.add_argument("--tls", choices=["off", "auto", "manual"], default="auto")
    p.add_argument("--key-type", choices=["auto", "p256", "p384", "p521", "rsa2048"], default="auto")
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--ca")
    p.add_argument("--put-key", default="hello")
    p.add_argument("--put-value", default="world")
    p.add_argument("--timeout-ms", type=int, default=15000)
    return p.parse_args()


ARGS = parse_args()
RESULT["tls_mode"] = ARGS.tls
if ARGS.timeout_ms <= 0:
    finish("usage: --timeout-ms must be positive")
TIMEOUT_S = ARGS.timeout_ms / 1000.0
DEADLINE = T0_PROCESS + TIMEOUT_S


def remaining() -> float:
    return max(0.05, DEADLINE - time.perf_counter())


def _watchdog() -> None:
    kill_plugin()
    finish(f"timeout: no result within {ARGS.timeout_ms} ms (stage: {_stage})")


_timer = threading.Timer(TIMEOUT_S, _watchdog)
_timer.daemon = True
_timer.start()

# --- settings that must be in the environment before pyvider is imported ----
os.environ.setdefault("PROVIDE_LOG_LEVEL", "WARNING")
if ARGS.tls == "auto":
    if ARGS.key_type == "rsa2048":
        finish("unsupported: pyvider's AutoMTLS client certificate is always ECDSA "
               "(PYVIDER_CLIENT_CERT_CURVE picks the curve); rsa2048 cannot be honoured")
    if ARGS.key_type == "auto":
        # The library's own default (secp384r1 in pyvider 0.5.5).
        os.environ.pop("PYVIDER_CLIENT_CERT_CURVE", None)
    else:
        # Read by pyvider from the client's environment when it generates the
        # AutoMTLS client certificate.
        os.environ["PYVIDER_CLIENT_CERT_CURVE"] = CURVES[ARGS.key_type]

MANUAL: dict[str, bytes] = {}
if ARGS.tls == "manual":
    if not (ARGS.cert and ARGS.key and ARGS.ca):
        finish("usage: --tls manual needs --cert, --key and --ca")
    try:
        for name, path in (("cert", ARGS.cert), ("key", ARGS.key), ("ca", ARGS.ca)):
            with open(path, "rb") as fh:
                MANUAL[name] = fh.read()
    except OSError as exc:
        finish(f"manual TLS: {exc}")

import asyncio  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import grpc  # noqa: E402
import kv_pb2  # noqa: E402
import kv_pb2_grpc  # noqa: E402
from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa  # noqa: E402
from google.protobuf import empty_pb2  # noqa: E402
from grpc_health.v1 import health_pb2, health_pb2_grpc  # noqa: E402
from pyvider.rpcplugin import RPCPluginClient, rpcplugin_config  # noqa: E402
from pyvider.rpcplugin.exception import RPCPluginError  # noqa: E402
from pyvider.rpcplugin.protocol.grpc_stdio_pb2 import StdioData  # noqa: E402

# How a plugin's GRPCStdio stream normally ends: the plugin stopped (its
# process exits with the stream open), the host cancelled it, or the plugin
# has no stdio service.
STDIO_NORMAL_END = (
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.CANCELLED,
    grpc.StatusCode.UNIMPLEMENTED,
)


def key_type_of(cert: x509.Certificate) -> str:
    pub = cert.public_key()
    if isinstance(pub, ec.EllipticCurvePublicKey):
        return {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}.get(
            pub.curve.name, pub.curve.name)
    if isinstance(pub, rsa.RSAPublicKey):
        return f"RSA-{pub.key_size}"
    if isinstance(pub, ed25519.Ed25519PublicKey):
        return "Ed25519"
    return type(pub).__name__


def key_type_of_pem(pem: bytes | str) -> str | None:
    try:
        data = pem.encode() if isinstance(pem, str) else pem
        return key_type_of(x509.load_pem_x509_certificate(data))
    except Exception:
        return None


def key_type_of_handshake_cert(b64: str | None) -> str | None:
    """Key type of the certificate in handshake field 6 (base64 DER)."""
    if not b64:
        return None
    import base64

    try:
        s = b64.strip()
        s += "=" * (-len(s) % 4)
        return key_type_of(x509.load_der_x509_certificate(base64.b64decode(s)))
    except Exception:
        return None


class ChannelNotReady(Exception):
    """Raised instead of pyvider's TransportError so that its fixed channel
    retry decorator (which retries TransportError, TimeoutError and OSError)
    does not run again."""


class KVPluginClient(RPCPluginClient):
    def _setup_channel_credentials(self):  # type: ignore[no-untyped-def]
        if MANUAL:
            return grpc.ssl_channel_credentials(
                root_certificates=MANUAL["ca"],
                private_key=MANUAL["key"],
                certificate_chain=MANUAL["cert"],
            )
        return super()._setup_channel_credentials()

    def _get_channel_options(self):  # type: ignore[no-untyped-def]
        options = super()._get_channel_options()
        if MANUAL and not any(k == "grpc.ssl_target_name_override" for k, _ in options):
            options.append(("grpc.ssl_target_name_override", "localhost"))
        return options

    async def _read_stdio_logs(self) -> None:  # type: ignore[override]
        """Relay the plugin's stdout/stderr at debug level until the stream
        ends; only an abnormal end is a warning."""
        if not self._stdio_stub:
            return
        try:
            async for chunk in self._stdio_stub.StreamStdio(empty_pb2.Empty()):
                if self.logger.is_debug_enabled():
                    name = "stdout" if chunk.channel == StdioData.Channel.STDOUT else "stderr"
                    text = chunk.data.decode("utf-8", errors="replace").rstrip()
                    self.logger.debug(f"Plugin {name}: {text}")
        except grpc.RpcError as exc:
            if exc.code() not in STDIO_NORMAL_END:
                self.logger.warning(f"stdio streaming ended with RPC error: {exc}")
        except Exception as exc:  # noqa: BLE001 - reported, never raised from the task
            self.logger.error(f"stdio streaming failed: {type(exc).__name__}: {exc}")

    async def _create_grpc_channel_impl(self) -> None:
        try:
            await super()._create_grpc_channel_impl()
        except RPCPluginError as exc:
            reason = await self._probe()
            msg = getattr(exc, "message", None) or str(exc)
            raise ChannelNotReady(f"{msg}; probe RPC: {reason}" if reason else msg) from exc

    async def _probe(self) -> str | None:
        """One Health/Check on a fresh channel, to learn why the channel
        never became ready (e.g. the TLS alert)."""
        if not self.target_endpoint:
            return None
        creds = self._setup_channel_credentials()
        options = self._get_channel_options()
        ch = (grpc.aio.secure_channel(self.target_endpoint, creds, options=options)
              if creds else grpc.aio.insecure_channel(self.target_endpoint, options=options))
        try:
            await health_pb2_grpc.HealthStub(ch).Check(
                health_pb2.HealthCheckRequest(service="plugin"), timeout=min(2.0, remaining()))
            return "health check succeeded on a second channel"
        except grpc.aio.AioRpcError as rpc_exc:
            return f"{rpc_exc.code().name}: {rpc_exc.details()}"
        except Exception as other:  # pragma: no cover - diagnostics only
            return f"{type(other).__name__}: {other}"
        finally:
            await ch.close(grace=None)


def configure_pyvider() -> None:
    c = rpcplugin_config
    c.plugin_magic_cookie_key = "BASIC_PLUGIN"
    c.plugin_magic_cookie_value = "hello"
    # One attempt, bounded steps.
    c.plugin_client_retry_enabled = False
    c.plugin_client_max_retries = 0
    c.plugin_handshake_timeout = max(1.0, TIMEOUT_S - 1.0)
    c.plugin_channel_ready_timeout = round(min(5.0, max(1.0, TIMEOUT_S / 3.0)), 1)
    c.plugin_connection_timeout = max(1.0, TIMEOUT_S - 1.0)
    c.plugin_grpc_grace_period = 0.2
    if ARGS.tls == "off":
        c.plugin_auto_mtls = False
        c.plugin_client_cert = None
        c.plugin_client_key = None
    elif ARGS.tls == "auto":
        c.plugin_auto_mtls = True
        c.plugin_client_cert = None
        c.plugin_client_key = None
    else:
        # Set on the config object, not in the environment, so the private
        # key does not travel to the plugin. pyvider still exports the client
        # certificate to the plugin as PLUGIN_CLIENT_CERT.
        c.plugin_auto_mtls = False
        c.plugin_client_cert = MANUAL["cert"].decode()
        c.plugin_client_key = MANUAL["key"].decode()


def record_handshake(client: RPCPluginClient) -> None:
    """Copy what the handshake and pyvider's AutoMTLS produced into RESULT."""
    RESULT["protocol_version"] = getattr(client, "_protocol_version", None)
    RESULT["transport"] = getattr(client, "_transport_name", None)
    RESULT["address"] = getattr(client, "_address", None)
    if ARGS.tls == "auto" and getattr(client, "client_cert", None):
        RESULT["host_key_type"] = key_type_of_pem(client.client_cert)
    RESULT["peer_key_type"] = key_type_of_handshake_cert(getattr(client, "_server_cert", None))


async def run() -> None:
    global _plugin_pid, _stage
    configure_pyvider()
    if ARGS.tls == "manual":
        kt = key_type_of_pem(MANUAL["cert"])
        RESULT["host_key_type"] = kt
        if ARGS.key_type != "auto" and KEY_TYPE_NAMES[ARGS.key_type] != kt:
            finish(f"unsupported: --key-type {ARGS.key_type} does not match the {kt} key of --cert")

    client = KVPluginClient(command=[os.path.abspath(ARGS.plugin)], config=None)

    async def track_pid() -> None:
        global _plugin_pid
        while True:
            proc = getattr(client, "_process", None)
            if proc is not None and getattr(proc, "pid", None):
                _plugin_pid = proc.pid
                return
            await asyncio.sleep(0.005)

    t0 = time.perf_counter()
    _stage = "start"
    pid_task = asyncio.create_task(track_pid())
    try:
        await asyncio.wait_for(client.start(), timeout=remaining())
    except Exception as exc:
        pid_task.cancel()
        record_handshake(client)  # whatever the handshake got to
        if getattr(client, "_process", None) is None:
            _plugin_pid = None  # pyvider already terminated and reaped it
        kill_plugin()
        if isinstance(exc, ChannelNotReady):
            finish(f"start: {exc}")
        msg = getattr(exc, "message", None) or str(exc)
        hint = getattr(exc, "hint", None)
        finish(f"start: {type(exc).__name__}: {msg}" + (f" (hint: {hint})" if hint else ""))
    pid_task.cancel()
    if getattr(client, "_process", None) is not None and client._process.pid:
        _plugin_pid = client._process.pid
    RESULT["start_ms"] = ms_since(t0)
    record_handshake(client)

    stub = kv_pb2_grpc.KVStub(client.grpc_channel)
    error: str | None = None
    try:
        _stage = "put"
        await stub.Put(kv_pb2.PutRequest(key=ARGS.put_key, value=ARGS.put_value.encode()),
                       timeout=remaining())
        RESULT["first_rpc_ms"] = ms_since(t0)
        _stage = "get"
        resp = await stub.Get(kv_pb2.GetRequest(key=ARGS.put_key), timeout=remaining())
        RESULT["value_ok"] = resp.value == ARGS.put_value.encode()
        if not RESULT["value_ok"]:
            error = f"value mismatch: put {ARGS.put_value!r}, got {resp.value!r}"
    except grpc.aio.AioRpcError as exc:
        error = f"{_stage}: {exc.code().name}: {exc.details()}"
    except Exception as exc:
        error = f"{_stage}: {type(exc).__name__}: {exc}"

    _stage = "shutdown"
    try:
        # GRPCController.Shutdown, then pyvider's close (channel, SIGTERM,
        # SIGKILL after its own grace period), each bounded.
        await asyncio.wait_for(client.shutdown_plugin(), timeout=min(2.0, remaining()))
        await asyncio.wait_for(client.close(), timeout=min(3.0, remaining()))
        if getattr(client, "_process", None) is None:
            _plugin_pid = None  # terminated and reaped by pyvider
    except Exception as exc:  # the process is killed below either way
        sys.stderr.write(f"kv-host: shutdown: {type(exc).__name__}: {exc}\n")
    kill_plugin()
    RESULT["total_ms"] = ms_since(t0)
    finish(error)


def main() -> None:
    try:
        asyncio.run(run())
    except SystemExit:
        raise
    except BaseException as exc:  # never a traceback on stdout
        kill_plugin()
        finish(f"{_stage}: {type(exc).__name__}: {exc}")
    finish(f"{_stage}: host ended without a result")


if __name__ == "__main__":
    main()
