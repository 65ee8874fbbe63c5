"""Shadowing's cost to the primary: p99 and throughput with every request copied to a
backend that answers after 500 ms, against the same route without a shadow, in one run.

    .venv/bin/python loadtests/bench_shadow.py [--connections 16] [--duration 8] [--json out.json]

Two ``strangler serve`` processes (1 worker each, access log off) run side by side on
the same routing file but for one line: ``plain`` has no shadow, ``shadowed`` copies
100 % of its requests (``max_concurrent`` high enough that none is dropped; the default
10 % of them also go to the primary a second time, for noise) to a backend that waits
500 ms before answering. The primary backend answers at once. Two measurements, each in
alternating rounds (medians reported), with a uvloop HTTP/1.1 client on keep-alive
connections:

* **throughput** — closed loop, ``--connections`` connections as fast as answers come:
  what one worker can serve. The copies are made by the worker's shadow process, in the
  idle scheduling class on the worker's core: a saturated worker leaves it no CPU, so
  most copies are dropped here (the share compared is printed) — the figure to size
  workers by is the next one;
* **capacity with every copy made** — the shadowed facade at a fixed rate (a quarter of
  the plain throughput), with the CPU time of the worker and of its shadow process per
  request read from ``/proc``: one core serves ``1 / (worker + shadow)`` requests a
  second with every one of them copied;
* **latency** — open loop at a fixed rate, the same for both (``--load`` of that
  capacity, 50 % by default: workers with headroom, as in production), latency counted
  from each request's scheduled time so that a stall is not hidden. The goal: the
  shadowed primary's p99 within 10 % of the plain one's, with at least 99 % of its
  requests compared (a p99 bought by dropping copies does not count).

Facades on CPU 0, the load and the backends on CPU 1 (when there are two).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PIN = (os.cpu_count() or 1) >= 2 and os.path.exists("/usr/bin/taskset")
FACADE_CPU = ["taskset", "-c", "0"] if PIN else []
LOAD_CPU = ["taskset", "-c", "1"] if PIN else []
DELAY = 0.5  # seconds the shadow backend waits before answering
GOAL = 1.10  # the shadowed p99 at most 10 % above the plain one
MIN_COMPARED = 0.99  # ... with at least this share of its requests compared

ROUTING = """\
version: 1
facade: {{listen: "127.0.0.1:{port}", access_log: false, admin: {{listen: "127.0.0.1:0"}}}}
backends:
  monolith: {{kind: monolith, url: "http://127.0.0.1:{fast}"}}
  candidate: {{kind: url, url: "http://127.0.0.1:{slow}"}}
routes:
  - name: orders
    match: {{paths: ["/api/orders/*"]}}
    targets: {{monolith: 100}}
{shadow}"""
SHADOW = "    shadow: {to: candidate, max_concurrent: 10000, timeout: 5}\n"
BODY = b'{"id": 12, "total": "120.00", "status": "placed"}'
ANSWER = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s" % (
    len(BODY),
    BODY,
)


# -- the backends (a process of their own) ---------------------------------------------


class _Backend(asyncio.Protocol):
    """Answers every request on a keep-alive connection, at once or after ``delay``."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            head, sep, rest = self.buffer.partition(b"\r\n\r\n")
            if not sep:
                return
            match = re.search(rb"(?im)^content-length:\s*(\d+)", head)
            length = int(match.group(1)) if match else 0
            if len(rest) < length:
                return
            self.buffer = rest[length:]
            if self.delay:
                asyncio.get_running_loop().call_later(self.delay, self._answer)
            else:
                self._answer()

    def _answer(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(ANSWER)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None


async def _backends(fast: int, slow: int) -> None:
    loop = asyncio.get_running_loop()
    await loop.create_server(lambda: _Backend(0.0), "127.0.0.1", fast, backlog=4096)
    await loop.create_server(lambda: _Backend(DELAY), "127.0.0.1", slow, backlog=4096)
    print("ready", flush=True)
    await asyncio.Event().wait()


# -- the load (a process of its own) ---------------------------------------------------


async def _client(port: int, until: float, latencies: list[float]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    request = b"GET /api/orders/12/ HTTP/1.1\r\nhost: shop\r\naccept: application/json\r\n\r\n"
    clock = time.perf_counter
    try:
        while clock() < until:
            started = clock()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            match = re.search(rb"(?im)^content-length:\s*(\d+)", head)
            await reader.readexactly(int(match.group(1)) if match else 0)
            latencies.append(clock() - started)
    finally:
        writer.close()


async def _paced(port: int, start: float, every: float, until: float, out: list[float]) -> None:
    """Requests at fixed times; each latency from its scheduled time (no coordinated
    omission: a stall delays the requests behind it, and they count it)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    request = b"GET /api/orders/12/ HTTP/1.1\r\nhost: shop\r\naccept: application/json\r\n\r\n"
    clock = time.perf_counter
    due = start
    try:
        while due < until:
            wait = due - clock()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            match = re.search(rb"(?im)^content-length:\s*(\d+)", head)
            await reader.readexactly(int(match.group(1)) if match else 0)
            out.append(clock() - due)
            due += every
    finally:
        writer.close()


async def _load(port: int, connections: int, duration: float, rate: float) -> dict[str, float]:
    warm: list[float] = []
    if rate:  # warmed at the same rate: a closed-loop warm-up would leave copies behind
        every = connections / rate
        begin = time.perf_counter()
        await asyncio.gather(
            *(_paced(port, begin + i * every / connections, every, begin + 1.0, warm)
              for i in range(connections))
        )  # fmt: skip
    else:
        await asyncio.gather(*(_client(port, time.perf_counter() + 1.0, warm) for _ in range(4)))
    latencies: list[float] = []
    started = time.perf_counter()
    until = started + duration
    if rate:
        await asyncio.gather(
            *(_paced(port, started + i * every / connections, every, until, latencies)
              for i in range(connections))
        )  # fmt: skip
    else:
        await asyncio.gather(*(_client(port, until, latencies) for _ in range(connections)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "requests": len(latencies),
        "warm_requests": len(warm),
        "rps": len(latencies) / elapsed,
        "p50_ms": latencies[len(latencies) // 2] * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000,
    }


# -- the run ---------------------------------------------------------------------------


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _measure(port: int, args: argparse.Namespace, rate: float = 0.0) -> dict[str, float]:
    out = subprocess.run(
        [*LOAD_CPU, sys.executable, __file__, "--client", str(port), "--rate", str(rate),
         "--connections", str(args.connections), "--duration", str(args.duration)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return dict(json.loads(out.stdout))


def _shadow_series(admin: str) -> dict[str, float]:
    import httpx

    text = httpx.get(f"{admin}/__facade/metrics", timeout=5).text
    found = re.findall(
        r'strangler_facade_shadow_total\{result="(\w+)",route="orders"\} (\S+)', text
    )
    return {result: float(value) for result, value in found}


def _compared(admin: str) -> float:
    series = _shadow_series(admin)
    return series.get("matched", 0.0) + series.get("differing", 0.0)


def _settled(admin: str, pid: int | None = None) -> None:
    """Wait until the shadow process has nothing in flight or waiting: its outcomes
    (and its CPU time) stopped changing for longer than the shadow backend takes to
    answer."""
    last: tuple[dict[str, float], float] | None = None
    quiet_since = time.monotonic()
    deadline = quiet_since + 120
    while time.monotonic() < deadline:
        now = (_shadow_series(admin), _cpu_seconds(pid) if pid else 0.0)
        if now != last:
            last, quiet_since = now, time.monotonic()
        elif time.monotonic() - quiet_since > DELAY * 3:
            return
        time.sleep(0.1)
    raise RuntimeError("the shadow process did not settle within 120 s")


def _cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far (``/proc/<pid>/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _shadow_process(worker: int) -> int:
    """The worker's shadow process: its child started by multiprocessing's spawn."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        for child in Path(f"/proc/{worker}/task/{worker}/children").read_text().split():
            command = Path(f"/proc/{child}/cmdline").read_bytes()
            if b"spawn_main" in command and b"resource_tracker" not in command:
                return int(child)
        time.sleep(0.1)  # the first copy starts it once the primary has answered
    raise RuntimeError(f"no shadow process under worker {worker}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--duration", type=float, default=8)
    parser.add_argument("--rounds", type=int, default=3, help="runs per facade; medians reported")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument(
        "--load", type=float, default=0.5, help="the latency run's rate, x the lower throughput"
    )
    parser.add_argument("--client", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--rate", type=float, default=0.0, help=argparse.SUPPRESS)
    parser.add_argument("--backends", nargs=2, type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    import uvloop

    if args.backends:
        uvloop.run(_backends(*args.backends))
        return 0
    if args.client:
        stats = uvloop.run(_load(args.client, args.connections, args.duration, args.rate))
        print(json.dumps(stats))
        return 0

    work = Path(tempfile.mkdtemp(prefix="strangler-bench-shadow-"))
    fast, slow = _free_port(), _free_port()
    processes: list[subprocess.Popen[str]] = []
    facades: dict[str, tuple[int, str]] = {}
    pids: dict[str, int] = {}
    try:
        backends = subprocess.Popen(
            [*LOAD_CPU, sys.executable, __file__, "--backends", str(fast), str(slow)],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        processes.append(backends)
        assert backends.stdout is not None
        backends.stdout.readline()
        for name, shadow in (("plain", ""), ("shadowed", SHADOW)):
            port = _free_port()
            routing = work / name / "routing.yaml"
            routing.parent.mkdir()
            routing.write_text(ROUTING.format(port=port, fast=fast, slow=slow, shadow=shadow))
            facade = subprocess.Popen(
                [*FACADE_CPU, sys.executable, "-m", "facade.cli", "serve", "--routing",
                 str(routing), "--no-access-log"],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT,
                env={**os.environ, "STRANGLER_COOKIE_SECRET": "bench"},
            )  # fmt: skip
            processes.append(facade)
            assert facade.stdout is not None
            line = ""
            while "strangler serve:" not in line:
                line = facade.stdout.readline()
                if not line:
                    raise RuntimeError(f"strangler serve did not start ({routing})")
            admin = re.search(r"admin (http://\S+)", line)
            pid = re.search(r" pid (\d+)", line)
            assert admin, line
            assert pid, line
            facades[name] = (port, admin.group(1))
            pids[name] = int(pid.group(1))
        print(
            f"{args.connections} connections, {args.rounds} x {args.duration:g}s per facade; "
            f"shadow backend answers after {DELAY * 1000:.0f} ms; "
            + ("facades on CPU 0, load and backends on CPU 1" if PIN else "no CPU pinning"),
            flush=True,
        )
        results: dict[str, dict[str, dict[str, float]]] = {}
        shadowed_admin = facades["shadowed"][1]

        import httpx

        # the first copied request starts the worker's shadow process
        httpx.get(f"http://127.0.0.1:{facades['shadowed'][0]}/api/orders/1/", timeout=5)
        shadow_pid = _shadow_process(pids["shadowed"])

        def rounds_of(rate: float, names: tuple[str, ...]) -> dict[str, dict[str, float]]:
            rounds: dict[str, list[dict[str, float]]] = {name: [] for name in names}
            compared = requests = 0.0
            for _ in range(args.rounds):
                for name in names:
                    port = facades[name][0]
                    if name == "shadowed":
                        _settled(
                            shadowed_admin, shadow_pid
                        )  # no copies of an earlier run in flight
                    before = _compared(shadowed_admin) if name == "shadowed" else 0.0
                    run = _measure(port, args, rate)
                    rounds[name].append(run)
                    if name == "shadowed":
                        _settled(
                            shadowed_admin, shadow_pid
                        )  # the last copies answer and are counted
                        compared += _compared(shadowed_admin) - before
                        requests += run["requests"] + run["warm_requests"]
            found = {}
            for name, runs in rounds.items():
                stats = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
                if name == "shadowed":
                    stats["compared_share"] = compared / requests
                found[name] = stats
                print(
                    f"  {name:<9} {stats['rps']:>8.0f} req/s  p50 {stats['p50_ms']:.3f} ms  "
                    f"p99 {stats['p99_ms']:.3f} ms"
                    + (f"  {compared / requests:.1%} compared" if name == "shadowed" else ""),
                    flush=True,
                )
            return found

        # The shadowed closed loop comes last: it leaves the shadow process a backlog of
        # copies (the worker gave it no CPU) that would run during the other phases.
        print("throughput, closed loop:")
        results["throughput"] = rounds_of(0.0, ("plain",))
        # what one core serves with every request copied, from the CPU time both take at a
        # rate the shadow process keeps up with
        calibration = results["throughput"]["plain"]["rps"] / 10
        _settled(shadowed_admin, shadow_pid)
        cpu = {
            "plain": _cpu_seconds(pids["plain"]),
            "shadowed": _cpu_seconds(pids["shadowed"]),
            "shadow process": _cpu_seconds(shadow_pid),
        }
        before = _compared(shadowed_admin)
        measured = {name: _measure(port, args, calibration) for name, (port, _) in facades.items()}
        _settled(shadowed_admin, shadow_pid)
        share = (_compared(shadowed_admin) - before) / (
            measured["shadowed"]["requests"] + measured["shadowed"]["warm_requests"]
        )
        total = {name: run["requests"] + run["warm_requests"] for name, run in measured.items()}
        per_request = {
            "plain": (_cpu_seconds(pids["plain"]) - cpu["plain"]) / total["plain"],
            "shadowed": (_cpu_seconds(pids["shadowed"]) - cpu["shadowed"]) / total["shadowed"],
            "shadow process": (_cpu_seconds(shadow_pid) - cpu["shadow process"])
            / total["shadowed"],
        }
        capacity = 1 / (per_request["shadowed"] + per_request["shadow process"])
        results["capacity"] = {
            "shadowed": {
                "rate": calibration, "compared_share": share,
                "plain_worker_us": per_request["plain"] * 1e6,
                "worker_us": per_request["shadowed"] * 1e6,
                "shadow_process_us": per_request["shadow process"] * 1e6,
                "rps_with_every_copy": capacity,
            }
        }  # fmt: skip
        print(
            f"CPU per request at {calibration:.0f} req/s ({share:.1%} compared): plain worker "
            f"{per_request['plain'] * 1e6:.1f} us; shadowed worker "
            f"{per_request['shadowed'] * 1e6:.1f} us + its shadow process "
            f"{per_request['shadow process'] * 1e6:.1f} us: {capacity:.0f} req/s per core "
            "with every request copied"
        )
        rate = capacity * args.load
        print(f"latency at {rate:.0f} req/s:")
        results["latency"] = rounds_of(rate, tuple(facades))
        print("throughput, closed loop, shadowed:")
        results["throughput"].update(rounds_of(0.0, ("shadowed",)))
        series = _shadow_series(shadowed_admin)
    finally:
        for process in reversed(processes):
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
    plain, shadowed = results["latency"]["plain"], results["latency"]["shadowed"]
    ratio = shadowed["p99_ms"] / plain["p99_ms"]
    closed = results["throughput"]
    share = shadowed["compared_share"]
    summary = {
        "p99_ratio": ratio,
        "compared_share": share,
        "throughput_ratio": closed["shadowed"]["rps"] / closed["plain"]["rps"],
        "capacity_ratio": results["capacity"]["shadowed"]["rps_with_every_copy"]
        / closed["plain"]["rps"],
        "goal_met": ratio <= GOAL and share >= MIN_COMPARED,
        "shadow_outcomes": series,
    }
    print(
        f"shadowed/plain: p99 at {rate:.0f} req/s x{ratio:.3f} with {share:.1%} compared "
        f"(goal <= x{GOAL:.2f} with >= {MIN_COMPARED:.0%}: "
        f"{'met' if summary['goal_met'] else 'NOT met'}); capacity with every copy made "
        f"x{summary['capacity_ratio']:.3f} of plain; closed-loop throughput "
        f"x{summary['throughput_ratio']:.3f}; shadow copies: {series}"
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"results": results, **summary}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
