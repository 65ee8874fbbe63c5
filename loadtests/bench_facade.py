"""Facade vs nginx vs direct: throughput, latency and CPU per request, in one run.

    .venv/bin/python loadtests/bench_facade.py [--connections 32] [--duration 10] [--json out.json]

Two upstream "backends" (nginx answering a small fixed body on two loopback ports) are
measured three ways with the same wrk load (same connections, same duration):

* ``direct``    wrk → upstream
* ``nginx``     wrk → nginx reverse proxy (1 worker, keep-alive upstream pool, 90/10
                split with ``split_clients``) → upstreams
* ``strangler`` wrk → ``strangler serve`` (1 worker, access log on, a 90/10 route) → upstreams
* ``relay``     wrk → ``loadtests/relay.py`` (a uvloop TCP relay with no HTTP logic) → one
                upstream: the floor of any uvloop-based proxy, so the gap between it and
                ``strangler`` is what the facade's HTTP work costs

For each it prints requests/s, p50 and p99 latency, and CPU per request of the proxy
process alone (utime+stime from /proc over the run, divided by requests): CPU per
request is steadier than req/s on a shared machine. The proxy under test runs on CPU 0,
wrk and the upstreams on CPU 1 (when there are two), and the proxies are measured in
alternating rounds; the medians are reported, with ratios against nginx and direct
measured in the same run. Needs nginx and wrk (Debian packages); everything listens on
127.0.0.1 and stops by itself.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port} after {timeout}s")


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / CLK_TCK


def children_of(pid: int) -> list[int]:
    found = [pid]
    for task in Path(f"/proc/{pid}/task").iterdir():
        children = (task / "children").read_text().split()
        for child in children:
            found += children_of(int(child))
    return found


NGINX_UPSTREAMS = """
worker_processes 1;
daemon off;
pid {dir}/upstream.pid;
error_log {dir}/upstream-error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    keepalive_requests 1000000;
    default_type application/json;
    server {{
        listen 127.0.0.1:{a};
        location / {{ return 200 '{{"backend":"monolith","ok":true}}'; }}
    }}
    server {{
        listen 127.0.0.1:{b};
        location / {{ return 200 '{{"backend":"canary","ok":true}}'; }}
    }}
}}
"""

NGINX_PROXY = """
worker_processes 1;
daemon off;
pid {dir}/proxy.pid;
error_log {dir}/proxy-error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    keepalive_requests 1000000;
    upstream monolith {{ server 127.0.0.1:{a}; keepalive 64; }}
    upstream canary {{ server 127.0.0.1:{b}; keepalive 64; }}
    split_clients "${{request_id}}" $backend {{ 90% monolith; * canary; }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://$backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            add_header X-Backend $backend;
        }}
    }}
}}
"""

ROUTING = """
version: 1
facade:
  listen: 127.0.0.1:{port}
backends:
  monolith: {{kind: monolith, url: "http://127.0.0.1:{a}"}}
  canary: {{kind: ecs, url: "http://127.0.0.1:{b}"}}
routes:
  - name: api
    match: {{paths: ["/api/*"]}}
    targets: {{monolith: 90, canary: 10}}
default: monolith
"""


def parse_wrk(output: str) -> dict[str, float]:
    def to_ms(value: str) -> float:
        number, unit = re.match(r"([\d.]+)(\w+)", value).groups()  # type: ignore[union-attr]
        return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    requests = int(re.search(r"(\d+) requests in", output).group(1))  # type: ignore[union-attr]
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    p50 = to_ms(re.search(r"^\s+50%\s+(\S+)", output, re.MULTILINE).group(1))  # type: ignore[union-attr]
    p99 = to_ms(re.search(r"^\s+99%\s+(\S+)", output, re.MULTILINE).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    return {
        "requests": requests,
        "rps": rps,
        "p50_ms": p50,
        "p99_ms": p99,
        "non_2xx": int(errors.group(1)) if errors else 0,
        "socket_errors": sum(int(g) for g in socket_errors.groups()) if socket_errors else 0,
    }


PIN = shutil.which("taskset") is not None and (os.cpu_count() or 1) >= 2
PROXY_CPU = ["taskset", "-c", "0"] if PIN else []
LOAD_CPU = ["taskset", "-c", "1"] if PIN else []


def run_wrk(port: int, connections: int, duration: float, threads: int) -> dict[str, float]:
    url = f"http://127.0.0.1:{port}/api/orders/1"
    wrk = [*LOAD_CPU, "wrk", f"-t{threads}", f"-c{connections}"]
    subprocess.run([*wrk, "-d1s", url], capture_output=True, check=True)  # warm-up
    result = subprocess.run(
        [*wrk, f"-d{duration:g}s", "--latency", url], capture_output=True, text=True, check=True
    )
    try:
        return parse_wrk(result.stdout)
    except (AttributeError, KeyError) as exc:
        raise RuntimeError(f"cannot read wrk's output for {url}:\n{result.stdout}") from exc


def measure_once(port: int, pids: list[int], args: argparse.Namespace) -> dict[str, float]:
    # the CPU delta is read around the measured run only, not wrk's warm-up
    before = cpu_seconds(pids) if pids else 0.0
    stats = run_wrk(port, args.connections, args.duration, args.threads)
    after = cpu_seconds(pids) if pids else 0.0
    stats["cpu_us_per_request"] = (after - before) / stats["requests"] * 1e6 if pids else 0.0
    return stats


def measure(
    servers: dict[str, tuple[int, list[int]]], args: argparse.Namespace
) -> dict[str, dict[str, float]]:
    """Alternate the servers round by round (so drift of the machine hits all alike)."""
    rounds: dict[str, list[dict[str, float]]] = {name: [] for name in servers}
    for _ in range(args.rounds):
        for name, (port, pids) in servers.items():
            rounds[name].append(measure_once(port, pids, args))
    results = {}
    for name, runs in rounds.items():
        stats = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
        print(
            f"  {name:<10} {stats['rps']:>9.0f} req/s  p50 {stats['p50_ms']:.3f} ms  "
            f"p99 {stats['p99_ms']:.3f} ms  cpu/req {stats['cpu_us_per_request']:.1f} us",
            flush=True,
        )
        results[name] = stats
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--duration", type=float, default=10)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--rounds", type=int, default=3, help="runs per server; medians reported")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument(
        "--serve-arg",
        dest="serve_args",
        action="append",
        default=[],
        help="extra argument for strangler serve, e.g. --serve-arg=--no-access-log",
    )
    args = parser.parse_args()
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists() or not shutil.which("wrk"):
        print("needs nginx and wrk: apt-get install nginx-light wrk", file=sys.stderr)
        return 2

    work = Path(tempfile.mkdtemp(prefix="strangler-bench-"))
    a, b, nginx_port, strangler_port = free_port(), free_port(), free_port(), free_port()
    relay_port = free_port()
    (work / "upstream.conf").write_text(NGINX_UPSTREAMS.format(dir=work, a=a, b=b))
    (work / "proxy.conf").write_text(NGINX_PROXY.format(dir=work, a=a, b=b, port=nginx_port))
    (work / "routing.yaml").write_text(ROUTING.format(a=a, b=b, port=strangler_port))
    processes: list[subprocess.Popen[bytes]] = []
    try:
        processes.append(
            subprocess.Popen([nginx, "-c", str(work / "upstream.conf"), "-p", str(work)])
        )
        wait_port(a)
        wait_port(b)
        proxy = subprocess.Popen(
            [*PROXY_CPU, nginx, "-c", str(work / "proxy.conf"), "-p", str(work)]
        )
        processes.append(proxy)
        facade = subprocess.Popen(
            [
                *PROXY_CPU,
                sys.executable,
                "-m",
                "facade.cli",
                "serve",
                "--routing",
                str(work / "routing.yaml"),
                "--admin-port",
                "0",
                *args.serve_args,
            ],
            stdout=subprocess.DEVNULL,
            cwd=ROOT,
        )
        processes.append(facade)
        relay = subprocess.Popen(
            [*PROXY_CPU, sys.executable, str(HERE / "relay.py"), str(relay_port), str(a)]
        )
        processes.append(relay)
        wait_port(nginx_port)
        wait_port(strangler_port)
        wait_port(relay_port)
        time.sleep(0.5)  # let nginx fork its worker before reading its pid tree

        print(
            f"wrk: {args.connections} connections, {args.rounds} x {args.duration:g}s per server, "
            f"{args.threads} thread(s); 2 nginx upstreams on loopback; "
            + ("proxy on CPU 0, wrk and upstreams on CPU 1" if PIN else "no CPU pinning")
        )
        results = measure(
            {
                "direct": (a, []),
                "nginx": (nginx_port, children_of(proxy.pid)),
                "strangler": (strangler_port, children_of(facade.pid)),
                "relay": (relay_port, children_of(relay.pid)),
            },
            args,
        )
    finally:
        for process in reversed(processes):
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        shutil.rmtree(work, ignore_errors=True)

    s, n, d, r = results["strangler"], results["nginx"], results["direct"], results["relay"]
    ratios = {
        "throughput_vs_nginx": s["rps"] / n["rps"],
        "cpu_per_request_vs_nginx": s["cpu_us_per_request"] / n["cpu_us_per_request"],
        "p99_added_vs_direct_ms": s["p99_ms"] - d["p99_ms"],
        "nginx_p99_added_vs_direct_ms": n["p99_ms"] - d["p99_ms"],
        "http_work_us_per_request": s["cpu_us_per_request"] - r["cpu_us_per_request"],
    }
    print("ratios (same run):")
    print(
        f"  strangler / nginx throughput      {ratios['throughput_vs_nginx']:.2f}x   (goal >= 0.50)"
    )
    print(f"  strangler / nginx CPU per request {ratios['cpu_per_request_vs_nginx']:.2f}x")
    print(
        f"  strangler p99 added over direct   {ratios['p99_added_vs_direct_ms']:.3f} ms"
        " (goal <= 1.5 ms)"
    )
    print(f"  nginx p99 added over direct       {ratios['nginx_p99_added_vs_direct_ms']:.3f} ms")
    print(
        f"  strangler CPU above the bare relay {ratios['http_work_us_per_request']:.1f} us"
        " per request (the facade's HTTP work)"
    )
    failures = sum(int(r["non_2xx"]) + int(r["socket_errors"]) for r in results.values())
    if failures:
        print(f"  failed requests (non-2xx or socket errors): {failures}")
    if args.json:
        args.json.write_text(json.dumps({"results": results, "ratios": ratios}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
