"""Flip a route under load: ``make flip`` (or ``locust -f loadtests/flip.py --headless``).

    .venv/bin/locust -f loadtests/flip.py --headless --host http://127.0.0.1:8000 \\
        --flip-routing routing.yaml --flip-route orders --flip-to orders \\
        --flip-path /api/orders/ --flip-header "Authorization: Token …" \\
        --flip-steps 0,10,50,100,0 --flip-seconds 20 --flip-users 20

While the users request ``--flip-path`` as fast as answered, the shape shifts
``--flip-route`` to give ``--flip-to`` each percentage of ``--flip-steps`` in turn
(``strangler shift`` on the running facade's routing file), holding each for
``--flip-seconds``, then stops and puts the route's weights back as they were. Requests
are tallied per phase and backend; those sent between a shift and the facade confirming
the new table live (its ``/__facade/health`` generation) count as ``transition`` and are
left out of the shares.

The run passes (exit 0) only if no request failed and, in every phase, the share of
``--flip-to`` is within tolerance of its weight: **4 standard deviations of a binomial
share over the phase's requests, at least 2 percentage points** — exact for 0 % and
100 %. The users send no cookies, so every request is assigned by weight (a sticky
client would keep its backend across phases, by design). Runs in one process: the phase
labels live where the shifts are made.
"""

from __future__ import annotations

import logging
import math
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, cast

import httpx
from backend_stats import install_listener, on
from locust import FastHttpUser, LoadTestShape, constant, events, task
from locust.env import Environment

STRANGLER = str(Path(sys.executable).with_name("strangler"))
TRANSITION = "transition"

backends = install_listener()
logging.getLogger("httpx").setLevel(logging.WARNING)  # one health check per poll is noise


@on(events.init_command_line_parser)
def _(parser: Any) -> None:
    group = parser.add_argument_group("flip under load")
    group.add_argument("--flip-routing", default="routing.yaml", help="the facade's routing file")
    group.add_argument(
        "--flip-admin",
        default="http://127.0.0.1:9901",
        help="the facade's admin listener (its /__facade/health tells the table's generation)",
    )
    group.add_argument("--flip-route", default="orders")
    group.add_argument("--flip-to", default="orders", help="the backend whose share moves")
    group.add_argument("--flip-steps", default="0,10,50,100,0", help="percentages, in order")
    group.add_argument("--flip-seconds", type=float, default=20.0, help="each phase's length")
    group.add_argument("--flip-path", default="/api/orders/", help="what the users request")
    group.add_argument("--flip-header", action="append", default=[], help="'Name: value'")
    group.add_argument("--flip-users", type=int, default=10, help="concurrent users")


def _options(environment: Environment) -> Any:
    return environment.parsed_options


def _steps(options: Any) -> list[float]:
    return [float(p) for p in options.flip_steps.split(",")]


class Flipper(FastHttpUser):
    wait_time = constant(0)

    @task
    def request(self) -> None:
        options = _options(self.environment)
        headers: dict[str, str] = {}
        for header in options.flip_header:
            name, _, value = header.partition(":")
            headers[name.strip()] = value.strip()
        self.client.cookiejar.clear()  # no stickiness: each request is assigned by weight
        self.client.get(options.flip_path, headers=headers, name=options.flip_path)


def _generation(admin: str) -> int:
    return int(httpx.get(f"{admin}/__facade/health", timeout=5).json()["generation"])


class FlipShape(LoadTestShape):
    """Constant users; a shift at each phase boundary; stop after the last phase. A phase
    lasts ``--flip-seconds`` from the moment its table is live, so none is cut short."""

    phase_index = -1
    phase_started = 0.0

    def tick(self) -> tuple[int, float] | None:
        environment = cast(Any, self.runner).environment
        options = _options(environment)
        steps = _steps(options)
        due = self.phase_index < 0 or time.monotonic() - self.phase_started >= options.flip_seconds
        if due:
            if self.phase_index + 1 >= len(steps):
                return None
            self.phase_index += 1
            self._shift(environment, options, self.phase_index, steps[self.phase_index])
            self.phase_started = time.monotonic()
        return options.flip_users, float(options.flip_users)

    def _shift(self, environment: Environment, options: Any, index: int, percent: float) -> None:
        backends.phase = TRANSITION
        admin = str(options.flip_admin)
        before = _generation(admin)
        result = subprocess.run(
            [STRANGLER, "shift", options.flip_route, "--to", options.flip_to,
             "--percent", f"{percent:g}", "-f", options.flip_routing],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if result.returncode != 0:
            print(f"flip: shift failed: {result.stderr.strip()}", file=sys.stderr)
            environment.process_exit_code = 1
            cast(Any, self.runner).quit()
            return
        deadline = time.monotonic() + options.flip_seconds
        changed = "nothing written" not in result.stdout
        while changed and _generation(admin) == before:
            if time.monotonic() > deadline:
                print(f"flip: the facade did not take the shift to {percent:g} % within "
                      f"{options.flip_seconds:g} s", flush=True)  # fmt: skip
                break
            time.sleep(0.05)
        backends.phase = phase_label(index, percent)
        print(f"flip: phase {backends.phase} live", flush=True)


def phase_label(index: int, percent: float) -> str:
    return f"{index + 1}:{percent:g}%"


def phase_verdicts(target: str, steps: list[float]) -> list[dict[str, Any]]:
    """Per phase: the expected and observed share of ``target``, and whether it is within
    tolerance (a phase without requests fails)."""
    verdicts = []
    rows = backends.rows(by_phase=True)
    for index, expected in enumerate(steps):
        phase = phase_label(index, expected)
        mine = [r for r in rows if r.phase == phase]
        total = sum(r.requests for r in mine)
        hits = sum(r.requests for r in mine if r.backend == target)
        observed = 100 * hits / total if total else 0.0
        p = expected / 100
        sigma = 100 * math.sqrt(p * (1 - p) / total) if total else 0.0
        tolerance = 0.0 if p in (0.0, 1.0) else max(2.0, 4 * sigma)
        verdicts.append(
            {
                "phase": phase,
                "requests": total,
                "expected_percent": expected,
                "observed_percent": round(observed, 2),
                "tolerance_points": round(tolerance, 2),
                "ok": total > 0 and abs(observed - expected) <= tolerance,
            }
        )
    return verdicts


class Restore:
    """The flipped backend's share before the run, put back when it ends."""

    percent: float | None = None


@on(events.init)
def _remember(environment: Environment, **_: Any) -> None:
    from facade.routing.loader import load_table

    options = _options(environment)
    route = load_table(options.flip_routing).route(options.flip_route)
    Restore.percent = route.share_of(options.flip_to) / 10


@on(events.quitting)
def _verdict(environment: Environment, **_: Any) -> None:
    options = _options(environment)
    steps = _steps(options)
    verdicts = phase_verdicts(options.flip_to, steps)
    print(f"\nShare of {options.flip_to} per phase (tolerance: 4 sigma, at least 2 points):")
    for v in verdicts:
        mark = "ok  " if v["ok"] else "FAIL"
        print(
            f"  {mark} {v['phase']:<8} expected {v['expected_percent']:>5.1f} %  observed "
            f"{v['observed_percent']:>6.2f} %  ± {v['tolerance_points']:.2f}  "
            f"({v['requests']} requests)"
        )
    failures = environment.stats.total.num_failures
    print(f"  failed requests: {failures}")
    if failures or not all(v["ok"] for v in verdicts):
        environment.process_exit_code = 1
    backends.phase = "ended"  # what users still send while the run winds down counts nowhere
    if Restore.percent is not None:
        subprocess.run(
            [STRANGLER, "shift", options.flip_route, "--to", options.flip_to,
             "--percent", f"{Restore.percent:g}", "-f", options.flip_routing],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        print(f"flip: {options.flip_route} back at {Restore.percent:g} % {options.flip_to}")
