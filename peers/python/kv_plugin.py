"""KV plugin served by pyvider-rpcplugin (go-plugin protocol, gRPC).

Handshake: cookie BASIC_PLUGIN=hello, app protocol version 1, service
`proto.KV` (Get/Put) over an in-memory dict.

Environment (set by whoever launches the host; hosts pass their whole
environment on to the plugin):
  RPCPLUGIN_KV_TRANSPORT   unix (default) or tcp
  RPCPLUGIN_KV_TLS_CERT    manual TLS: server certificate (PEM file)
  RPCPLUGIN_KV_TLS_KEY     manual TLS: server private key (PEM file)
  RPCPLUGIN_KV_TLS_CA      manual TLS: CA that must have signed the client cert
Without the RPCPLUGIN_KV_TLS_* variables the plugin follows the host: AutoMTLS
when PLUGIN_CLIENT_CERT is set, plaintext otherwise.

Run it through the `kv-plugin` wrapper next to this file, which uses the venv
made by setup.sh.
"""

from __future__ import annotations

import os
import sys

# pyvider-rpcplugin (and the provide.foundation logger under it) read their
# configuration from the environment when they are imported, so everything
# environment-based is settled here, before any pyvider import.
os.environ.setdefault("PROVIDE_LOG_LEVEL", "WARNING")
os.environ["PLUGIN_MAGIC_COOKIE_KEY"] = "BASIC_PLUGIN"
os.environ["PLUGIN_MAGIC_COOKIE_VALUE"] = "hello"


def _fail(msg: str) -> None:
    # Nothing has been written to stdout, so the host sees a startup failure.
    sys.stderr.write(f"kv-plugin: {msg}\n")
    sys.stderr.flush()
    sys.exit(1)


def _read_text(path: str, what: str) -> str:
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read()
    except OSError as exc:
        _fail(f"cannot read {what} {path!r}: {exc}")
        raise  # unreachable


def _server_config() -> dict[str, object]:
    """Instance configuration for RPCPluginServer (overrides pyvider's env)."""
    cfg: dict[str, object] = {
        "PLUGIN_MAGIC_COOKIE_KEY": "BASIC_PLUGIN",
        "PLUGIN_MAGIC_COOKIE_VALUE": "hello",
    }

    transport = os.environ.get("RPCPLUGIN_KV_TRANSPORT", "unix").strip().lower() or "unix"
    if transport not in ("unix", "tcp"):
        _fail(f"RPCPLUGIN_KV_TRANSPORT must be unix or tcp, not {transport!r}")
    cfg["PLUGIN_SERVER_TRANSPORTS"] = [transport]

    cert = os.environ.get("RPCPLUGIN_KV_TLS_CERT", "")
    key = os.environ.get("RPCPLUGIN_KV_TLS_KEY", "")
    ca = os.environ.get("RPCPLUGIN_KV_TLS_CA", "")
    if cert or key or ca:
        if not (cert and key and ca):
            _fail("RPCPLUGIN_KV_TLS_CERT, RPCPLUGIN_KV_TLS_KEY and RPCPLUGIN_KV_TLS_CA must be set together")
        # pyvider takes the server pair as PEM text and the client CA as PEM
        # text or file://; with PLUGIN_CLIENT_ROOT_CERTS set it requires and
        # verifies the client certificate.
        cfg["PLUGIN_SERVER_CERT"] = _read_text(cert, "server certificate")
        cfg["PLUGIN_SERVER_KEY"] = _read_text(key, "server key")
        cfg["PLUGIN_CLIENT_ROOT_CERTS"] = _read_text(ca, "client CA")
    return cfg


CONFIG = _server_config()

import asyncio  # noqa: E402
import json  # noqa: E402
from datetime import datetime, timezone  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import kv_pb2  # noqa: E402
import kv_pb2_grpc  # noqa: E402
from pyvider.rpcplugin import RPCPluginProtocol, RPCPluginServer  # noqa: E402


def hclog(level: str, message: str, **fields: object) -> None:
    """One hclog-shaped JSON line on stderr, which a go-plugin host re-logs
    at `level` (it needs @level, @message and a 6-digit @timestamp)."""
    entry: dict[str, object] = {
        "@level": level,
        "@message": message,
        "@module": "kv-plugin",
        "@timestamp": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
    }
    entry.update(fields)
    sys.stderr.write(json.dumps(entry) + "\n")
    sys.stderr.flush()


class KVServicer(kv_pb2_grpc.KVServicer):
    def __init__(self) -> None:
        self._data: dict[str, bytes] = {}

    async def Put(self, request: kv_pb2.PutRequest, context: object) -> kv_pb2.Empty:
        self._data[request.key] = bytes(request.value)
        hclog("info", "put", key=request.key, bytes=len(request.value))
        return kv_pb2.Empty()

    async def Get(self, request: kv_pb2.GetRequest, context: object) -> kv_pb2.GetResponse:
        value = self._data.get(request.key)
        hclog("info", "get", key=request.key, found=value is not None, bytes=len(value or b""))
        return kv_pb2.GetResponse(value=value or b"")


class KVProtocol(RPCPluginProtocol):
    # The versions this plugin serves (go-plugin: the keys of VersionedPlugins).
    supported_protocol_versions = [1]
    service_name = "proto.KV"

    async def get_grpc_descriptors(self) -> tuple[object, str]:
        return kv_pb2.DESCRIPTOR, "proto.KV"

    async def add_to_server(self, server: object, handler: object) -> None:
        kv_pb2_grpc.add_KVServicer_to_server(handler, server)


async def main() -> None:
    # RPCPluginServer creates an asyncio Future at construction, so it must be
    # built inside the running loop. serve() exits the process itself.
    server = RPCPluginServer(protocol=KVProtocol(), handler=KVServicer(), config=CONFIG)
    await server.serve()


if __name__ == "__main__":
    asyncio.run(main())
