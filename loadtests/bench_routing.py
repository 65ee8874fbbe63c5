"""The cost of one routing decision against the size of the route table.

    .venv/bin/python loadtests/bench_routing.py [--seconds 1.0] [--json out.json]

A decision is what the facade does per request before forwarding: find the first route
whose conditions hold (``facade.routing.matcher``) and choose its backend by weight
(``facade.proxy.choice``). Tables of 10, 100 and 1,000 routes are generated with the
shapes real tables have (prefix patterns, exact paths, method and header conditions,
splits and sticky routes); requests hit every route evenly, a fifth go to the default.
Each size is timed in alternating rounds for ``--seconds`` each; the median per-decision
time is printed with its ratio to the 10-route table (the in-run reference), and the
goal is checked: at most 10 µs at 100 routes, growing sub-linearly (1,000 routes cost
less than 10 times 100 routes).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path

from facade.proxy.choice import Chooser
from facade.routing.loader import parse_table
from facade.routing.matcher import Matcher
from facade.routing.model import RoutingTable

SIZES = (10, 100, 1000)
Request = tuple[str, str, dict[str, list[str]]]
GOAL_US_AT_100 = 10.0


def table(routes: int) -> RoutingTable:
    lines = [
        "version: 1",
        "facade: {max_rules: 1000}",
        "backends:",
        "  monolith: {kind: monolith, url: 'http://127.0.0.1:9'}",
        "  svc: {kind: url, url: 'http://127.0.0.1:8'}",
        "routes:",
    ]
    for i in range(routes):
        kind = i % 5
        if kind == 0:
            match = f"{{paths: ['/api/s{i}', '/api/s{i}/*']}}"
        elif kind == 1:
            match = f"{{paths: ['/api/s{i}/*'], methods: [GET, HEAD]}}"
        elif kind == 2:
            match = f"{{paths: ['/pages/s{i}/*'], headers: {{X-Canary: ['on']}}}}"
        elif kind == 3:
            match = f"{{paths: ['/api/s{i}/items/*/detail']}}"
        else:
            match = f"{{paths: ['/static/s{i}/*.css', '/static/s{i}/*.js']}}"
        targets = "{monolith: 90, svc: 10}" if i % 2 else "{svc: 100}"
        sticky = ", stickiness: {duration: 600}" if i % 4 == 1 else ""
        lines.append(f"  - {{name: r{i}, match: {match}, targets: {targets}{sticky}}}")
    lines.append("default: monolith")
    return parse_table("\n".join(lines) + "\n", f"{routes}-routes.yaml")


def requests(routes: int, count: int, rng: random.Random) -> list[Request]:
    made: list[Request] = []
    for _ in range(count):
        if rng.random() < 0.2:
            made.append(("GET", f"/shop/page/{rng.randint(1, 999)}", {}))
            continue
        i = rng.randrange(routes)
        kind = i % 5
        path = {
            0: f"/api/s{i}/orders/{rng.randint(1, 9999)}",
            1: f"/api/s{i}/list",
            2: f"/pages/s{i}/home",
            3: f"/api/s{i}/items/{rng.randint(1, 99)}/detail",
            4: f"/static/s{i}/app.js",
        }[kind]
        headers = {"x-canary": ["on"]} if kind == 2 else {}
        made.append(("GET", path, headers))
    return made


def per_decision_us(
    matcher: Matcher, chooser: Chooser, sample: list[Request], seconds: float
) -> float:
    done, started = 0, time.perf_counter()
    while True:
        for method, path, headers in sample:
            chooser.choose(matcher.match(method, path, headers), headers)
        done += len(sample)
        elapsed = time.perf_counter() - started
        if elapsed >= seconds:
            return elapsed / done * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="per size and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    rng = random.Random(7)
    setups = {}
    for size in SIZES:
        routes = table(size)
        matcher, chooser = Matcher(routes), Chooser(routes, b"bench", random.Random(1))
        sample = requests(size, 2000, rng)
        for method, path, headers in sample[:50]:  # compile the matcher's lazy regexes
            matcher.match(method, path, headers)
        setups[size] = (matcher, chooser, sample)
    times: dict[int, list[float]] = {size: [] for size in SIZES}
    for _ in range(args.rounds):
        for size in SIZES:
            times[size].append(per_decision_us(*setups[size], args.seconds))
    median = {size: statistics.median(values) for size, values in times.items()}
    reference = median[SIZES[0]]
    print(f"{'routes':>7} {'µs/decision':>12} {'x 10 routes':>12}")
    for size in SIZES:
        print(f"{size:>7} {median[size]:>12.2f} {median[size] / reference:>12.2f}")
    at_100 = median[100] <= GOAL_US_AT_100
    sublinear = median[1000] < 10 * median[100]
    print(f"goal ≤ {GOAL_US_AT_100:g} µs at 100 routes: {'met' if at_100 else 'NOT met'}; "
          f"1,000 routes / 100 routes = {median[1000] / median[100]:.2f} "
          f"({'sub-linear' if sublinear else 'NOT sub-linear'})")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps({
            "us_per_decision": {str(k): round(v, 3) for k, v in median.items()},
            "ratio_to_10_routes": {str(k): round(v / reference, 3) for k, v in median.items()},
            "goal_met": at_100 and sublinear,
        }, indent=2))  # fmt: skip
    return 0 if at_100 and sublinear else 1


if __name__ == "__main__":
    sys.exit(main())
