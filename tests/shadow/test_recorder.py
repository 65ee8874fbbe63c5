"""The recorder process stays out of the proxy's way for the CPU."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest

from facade.shadow.recorder import Recorder

ROUTING = """\
version: 1
backends:
  monolith: {kind: monolith, url: "http://127.0.0.1:1"}
  orders: {kind: ecs, url: "%(url)s"}
routes:
  - name: orders
    match: {paths: ["/api/orders/*"]}
    targets: {monolith: 100}
    shadow: {to: orders, noise: 0, store: var/s.sqlite3}
default: monolith
"""


@pytest.mark.skipif(not hasattr(os, "SCHED_IDLE"), reason="Linux's idle scheduling class")
def test_the_recorder_runs_in_the_idle_scheduling_class() -> None:
    loop = asyncio.new_event_loop()
    recorder = Recorder(loop, lambda route, result, n: None)
    try:
        pid = recorder.process.pid
        assert pid is not None
        deadline = time.monotonic() + 20
        policy = os.sched_getscheduler(pid)
        while policy != os.SCHED_IDLE and time.monotonic() < deadline:
            time.sleep(0.05)  # the spawned interpreter sets it once it has started
            policy = os.sched_getscheduler(pid)
        assert policy == os.SCHED_IDLE
        assert os.sched_getscheduler(os.getpid()) != os.SCHED_IDLE  # the worker is not
    finally:
        recorder.close()
        loop.close()


def test_a_finished_copy_keeps_nothing_alive_until_its_deadline(tmp_path: Path) -> None:
    """Finished copies wait in the deadline heap for ``timeout``; holding their
    requests and answers there made the collector walk thousands of them (pauses of
    100 ms and more under a slow shadow)."""
    from facade.proxy.metrics import Metrics
    from facade.routing.loader import load_table
    from facade.shadow import mirror as mirror_module
    from tests.facade.upstream import upstream

    with upstream("shadow") as server:
        routing = tmp_path / "routing.yaml"
        routing.write_text(ROUTING % {"url": server.url})
        table = load_table(routing)
        route = table.route("orders")

        async def run() -> list[mirror_module._Copy]:
            loop = asyncio.get_running_loop()
            mirror = mirror_module.Mirror(loop, Metrics())
            marker = b"x-marker-" + b"7" * 64
            capture = mirror.copy(
                table, route, "monolith", "GET", "/api/orders/1", None,
                [(b"host", b"shop"), (b"x-marker", marker)], {}, b"", "127.0.0.1", "Root=1-2-3",
            )  # fmt: skip
            assert capture is not None
            capture.whole(200, [(b"content-type", b"application/json")], b'{"id": 1}')
            capture.finished()
            deadline = loop.time() + 10
            while mirror.in_flight.get("orders", 0) and loop.time() < deadline:
                await asyncio.sleep(0.01)
            copies = [entry[2] for entry in mirror._deadlines]
            assert copies, "the finished copy waits in the deadline heap"
            held = [c for c in copies if c.encoded or c.pieces or c.headers]
            assert not held
            assert all(c.pending is mirror_module._RELEASED for c in copies)
            mirror.close()
            return copies

        copies = asyncio.run(run())
    assert all(c.finished for c in copies)
