"""The pyvider-rpcplugin bench plugin: the KV service over an in-memory dict
with no per-call logging (the KV contract plugin logs every call), so that
every language's bench plugin does the same work per call.

AutoMTLS when the host sends PLUGIN_CLIENT_CERT, plaintext otherwise; unix
socket. Run it with the venv made by setup.sh:
    .venv/bin/python kv_bench_plugin.py
(bench hosts take it as `--plugin .venv/bin/python --plugin-arg kv_bench_plugin.py`).
"""

from __future__ import annotations

import os
import sys

# pyvider reads its configuration from the environment at import time.
os.environ.setdefault("PROVIDE_LOG_LEVEL", "WARNING")
os.environ["PLUGIN_MAGIC_COOKIE_KEY"] = "BASIC_PLUGIN"
os.environ["PLUGIN_MAGIC_COOKIE_VALUE"] = "hello"

import asyncio  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import kv_pb2  # noqa: E402
import kv_pb2_grpc  # noqa: E402
from pyvider.rpcplugin import RPCPluginProtocol, RPCPluginServer  # noqa: E402

CONFIG: dict[str, object] = {
    "PLUGIN_MAGIC_COOKIE_KEY": "BASIC_PLUGIN",
    "PLUGIN_MAGIC_COOKIE_VALUE": "hello",
    "PLUGIN_SERVER_TRANSPORTS": ["unix"],
}


class KVServicer(kv_pb2_grpc.KVServicer):
    def __init__(self) -> None:
        self._data: dict[str, bytes] = {}

    async def Put(self, request: kv_pb2.PutRequest, context: object) -> kv_pb2.Empty:
        self._data[request.key] = request.value
        return kv_pb2.Empty()

    async def Get(self, request: kv_pb2.GetRequest, context: object) -> kv_pb2.GetResponse:
        return kv_pb2.GetResponse(value=self._data.get(request.key, b""))


class KVProtocol(RPCPluginProtocol):
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
