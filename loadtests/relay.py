"""The cost floor of any uvloop-based proxy: a TCP relay with no HTTP logic at all.

    python loadtests/relay.py LISTEN_PORT UPSTREAM_PORT

Each client connection gets its own upstream connection and bytes are copied both ways.
``bench_facade.py`` measures it beside the facade: the difference between the two is
what the facade's HTTP work (parsing, routing, choosing, headers, metrics, log) costs.
"""

from __future__ import annotations

import asyncio
import sys

import uvloop


class _Upstream(asyncio.Protocol):
    def __init__(self, client: _Client) -> None:
        self.client = client
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        assert self.client.transport is not None
        self.client.transport.write(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.client.transport is not None:
            self.client.transport.close()


class _Client(asyncio.Protocol):
    upstream_port = 0

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.upstream: _Upstream | None = None
        self.pending: list[bytes] = []
        self.tasks: set[asyncio.Task[None]] = set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        task = asyncio.get_running_loop().create_task(self._connect())
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        _, upstream = await loop.create_connection(
            lambda: _Upstream(self), "127.0.0.1", self.upstream_port
        )
        self.upstream = upstream
        assert upstream.transport is not None
        for data in self.pending:
            upstream.transport.write(data)
        self.pending.clear()

    def data_received(self, data: bytes) -> None:
        if self.upstream is None or self.upstream.transport is None:
            self.pending.append(data)
        else:
            self.upstream.transport.write(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if self.upstream is not None and self.upstream.transport is not None:
            self.upstream.transport.close()


async def _main(listen_port: int) -> None:
    loop = asyncio.get_running_loop()
    await loop.create_server(_Client, "127.0.0.1", listen_port, backlog=2048)
    await asyncio.Event().wait()


if __name__ == "__main__":
    _Client.upstream_port = int(sys.argv[2])
    uvloop.run(_main(int(sys.argv[1])))
