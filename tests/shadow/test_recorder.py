"""The recorder process stays out of the proxy's way for the CPU."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest

from facade.routing.loader import load_table
from facade.routing.model import RoutingTable
from facade.shadow import copier as copier_module
from facade.shadow.copier import Job, Pair
from facade.shadow.recorder import Recorder
from tests.facade.upstream import upstream

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


def _job(table: RoutingTable, path: str, *, headers: tuple[tuple[bytes, bytes], ...] = ()) -> Job:
    route = table.route("orders")
    assert route.shadow is not None
    return Job(
        "orders", Path("s.sqlite3"), route.shadow, "GET", path, None,
        ((b"host", b"shop"), *headers), b"", "127.0.0.1", "Root=1-2-3", b"x-override", 8000,
        table.backends["orders"], table.backends["monolith"],
        200, [(b"content-type", b"application/json")], b'{"id": 1}',
        time.monotonic(),
    )  # fmt: skip


def _table(tmp_path: Path, url: str, shadow: str = "{to: orders, noise: 0}") -> RoutingTable:
    routing = tmp_path / "routing.yaml"
    routing.write_text(
        (ROUTING % {"url": url}).replace("{to: orders, noise: 0, store: var/s.sqlite3}", shadow)
    )
    return load_table(routing)


def test_a_finished_copy_keeps_nothing_alive_until_its_deadline(tmp_path: Path) -> None:
    """Finished copies wait in the deadline heap for ``timeout``; holding their
    requests and answers there made the collector walk thousands of them (pauses of
    100 ms and more under a slow shadow)."""
    with upstream("shadow") as server:
        table = _table(tmp_path, server.url)
        pairs: list[Pair] = []

        async def run() -> list[copier_module._Copy]:
            loop = asyncio.get_running_loop()
            copier = copier_module.Copier(loop, pairs.append, lambda *count: None)
            marker = b"x-marker-" + b"7" * 64
            copier.start(_job(table, "/api/orders/1", headers=((b"x-marker", marker),)))
            deadline = loop.time() + 10
            while copier.busy() and loop.time() < deadline:
                await asyncio.sleep(0.01)
            copies = [entry[2] for entry in copier._deadlines]
            assert copies, "the finished copy waits in the deadline heap"
            held = [c for c in copies if c.encoded or c.pieces or c.headers]
            assert not held
            assert all(c.pending is copier_module._RELEASED for c in copies)
            copier.close()
            return copies

        copies = asyncio.run(run())
    assert all(c.finished for c in copies)
    assert len(pairs) == 1  # and the pair was recorded
    assert pairs[0].shadow is not None


def test_past_the_cap_jobs_wait_in_a_room_as_large_as_the_cap_then_are_dropped(
    tmp_path: Path,
) -> None:
    """A burst of jobs (the shadow process had no CPU for a while) is not dropped while
    the cap's waiting room has space; a job over it is, and so is one that waited longer
    than ``shadow.timeout`` for a slot — never sent late."""
    with upstream("shadow") as server:
        table = _table(
            tmp_path, server.url, "{to: orders, noise: 0, max_concurrent: 2, timeout: 1}"
        )
        pairs: list[Pair] = []
        counts: list[str] = []

        async def run() -> None:
            loop = asyncio.get_running_loop()
            copier = copier_module.Copier(
                loop, pairs.append, lambda r, s, name: counts.append(name)
            )
            # 2 copies take the slots, 2 wait, the fifth finds the room full
            for number in range(5):
                copier.start(_job(table, f"/slow/0.2/{number}"))
            assert copier.in_flight["orders"] == 2
            assert len(copier.waiting["orders"]) == 2
            assert counts == ["dropped:concurrency"]
            await asyncio.sleep(0.1)  # the two are sent
            time.sleep(1.2)  # then this process gets no CPU for longer than the timeout
            deadline = loop.time() + 10
            while copier.busy() and loop.time() < deadline:
                await asyncio.sleep(0.01)
            copier.close()

        asyncio.run(run())
        # the two waiting had waited 1.3 s (> timeout: 1 s) when the slots came free
        assert counts.count("dropped:concurrency") == 3
        assert [p for p in server.received if p.startswith("/slow/")] == [
            "/slow/0.2/0", "/slow/0.2/1",
        ]  # fmt: skip

        async def burst() -> None:
            loop = asyncio.get_running_loop()
            copier = copier_module.Copier(
                loop, pairs.append, lambda r, s, name: counts.append(name)
            )
            for number in range(4):  # fast answers: the waiting ones go when a slot frees
                copier.start(_job(table, f"/api/orders/{number}"))
            deadline = loop.time() + 10
            while copier.busy() and loop.time() < deadline:
                await asyncio.sleep(0.01)
            copier.close()

        counts.clear()
        pairs.clear()
        asyncio.run(burst())
        assert counts == []
        assert sorted(p.path for p in pairs) == [f"/api/orders/{n}" for n in range(4)]
