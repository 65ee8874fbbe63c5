"""A rollout of the orders route under load, through the whole ``strangler up`` stack:
``make rollout-load``.

    .venv/bin/python loadtests/rollout_load.py [--users 40] [--json out.json]

Runs the sample topology (``make demo``'s defaults: SQLite, every sync worker) on free
loopback ports with the orders route at 0 % on the Lambda, and locust's buyers
(``loadtests/rollout_users.py``: they log in, list, open, place and pay orders, each
keeping its sticky cookie; fresh buyers for each phase, started once the rollout's first
step gave the Lambda its share — a client that meets the route at 0 % stays sticky to the
monolith for the cookie's hour, as on the ALB) through the front door. Then, with the
rollout plan of routing.yaml shortened to minutes (steps 10 → 50 → 100, ``--min-time`` per step,
``--interval`` between analyses):

1. **healthy**: ``strangler rollout start orders`` must promote the Lambda to 100 %
   (exit 0), with the sync gate checking both orders streams before each increase;
2. **faulty**: the route goes back to the monolith, the facade aborts ``--abort`` % of
   the Lambda's requests with a 503 (fault injection, ``faults:`` in routing.yaml), and a
   new rollout must roll back by itself (exit 1).

It prints how many users' requests failed during the faulty rollout (the facade's own
count of 503s from the Lambda) against the bound the analysis aims at: the canary's
share of the requests of one analysis interval, times the fault rate — and exits 1 if a
rollout ended otherwise. Everything stops by itself.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from demo_stack import REPO, STRANGLER, sample_routing, stack, strangler
from ruamel.yaml import YAML

from facade.rollout.providers import parse_exposition
from facade.routing.loader import load_table


def _edit(routing: Path, change: Any) -> None:
    yaml = YAML(typ="rt")
    document = yaml.load(routing.read_text())
    change(document)
    with routing.open("w") as handle:
        yaml.dump(document, handle)


def shorten(routing: Path, min_time: float, interval: float, min_sample: int) -> None:
    """The orders plan, in minutes: from 0 %, 10 → 50 → 100, a short bake."""

    def change(document: Any) -> None:
        route = next(r for r in document["routes"] if r["name"] == "orders")
        route["targets"] = {"monolith": 100, "orders": 0}
        plan = route["rollout"]
        plan["steps"] = [10, 50, 100]
        plan["step"] = {"min_time": min_time, "min_sample": min_sample, "max_wait": 240}
        plan["bake"] = min_time
        plan["interval"] = interval
        plan["on_inconclusive"] = "rollback"

    _edit(routing, change)


def inject(routing: Path, percent: float) -> None:
    def change(document: Any) -> None:
        document["backends"]["orders"]["faults"] = {"abort": {"percent": percent, "status": 503}}

    _edit(routing, change)


def admin_url(routing: Path) -> str:
    yaml = YAML(typ="safe")
    listen = yaml.load(routing.read_text())["facade"]["admin"]["listen"]
    return f"http://{listen}"


def lambda_counts(admin: str) -> tuple[int, int]:
    """(requests, 5xx) the facade counted for the orders route's Lambda."""
    text = httpx.get(f"{admin}/__facade/metrics", timeout=10).text
    _, canary = parse_exposition(text, "orders", ("monolith", "orders"))
    return canary.requests, canary.errors


class _First(threading.Event):
    at: float | None = None


def first_request(admin: str, since: int) -> _First:
    """A thread that notes when the Lambda gets its first request past ``since``
    (``.at``, monotonic); ``set()`` stops it."""
    first = _First()

    def watch() -> None:
        while not first.wait(0.1):
            with contextlib.suppress(httpx.HTTPError):
                if lambda_counts(admin)[0] > since:
                    first.at = time.monotonic()
                    return

    threading.Thread(target=watch, daemon=True).start()
    return first


def rollout(
    routing: Path, env: dict[str, str], admin: str, then: Any, *extra: str
) -> tuple[int, float]:
    """``rollout start orders`` in the foreground; ``then()`` once its first step gave
    the Lambda traffic (the buyers start then: a client that meets the route at 0 %
    is sticky to the monolith for the cookie's hour, as on the ALB)."""
    started = time.monotonic()
    process = subprocess.Popen(
        [STRANGLER, "rollout", "start", "orders", "-f", str(routing), "--metrics-url", admin,
         *extra],
        env=env, text=True,
    )  # fmt: skip
    try:
        while process.poll() is None:
            found = load_table(routing).route("orders").share_of("orders")
            if found > 0:
                then()
                break
            time.sleep(0.2)
        code = process.wait(1800)
    finally:
        if process.poll() is None:
            process.kill()
    return code, time.monotonic() - started


def status(routing: Path, env: dict[str, str]) -> dict[str, Any]:
    done = strangler("rollout", "status", "orders", "--json", "-f", str(routing), env=env)
    return dict(json.loads(done.stdout))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=40, help="locust buyers")
    parser.add_argument("--min-time", type=float, default=20.0, help="seconds per step")
    parser.add_argument(
        "--interval", type=float, default=10.0, help="seconds between analyses (the plan default)"
    )
    parser.add_argument("--min-sample", type=int, default=100, help="canary requests per step")
    parser.add_argument("--abort", type=float, default=20.0, help="percent of faulty answers")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)

    report: dict[str, Any] = {}
    with contextlib.ExitStack() as resources:
        scratch = resources.enter_context(tempfile.TemporaryDirectory(prefix="strangler-roll-"))
        routing, base = sample_routing(Path(scratch))
        shorten(routing, args.min_time, args.interval, args.min_sample)
        env = {**os.environ, "STRANGLER_VAR_DIR": scratch, "DATABASE_URL": "",
               "CATALOG_DATABASE_URL": ""}  # fmt: skip
        admin = admin_url(routing)
        resources.enter_context(stack(routing, env, customers=max(args.users, 20)))

        def buyers() -> subprocess.Popen[bytes]:
            """Fresh locust buyers (new clients: no sticky cookie from an earlier phase),
            logged in."""
            process = subprocess.Popen(
                [str(Path(sys.executable).with_name("locust")), "-f",
                 str(REPO / "loadtests" / "rollout_users.py"), "--headless", "--host", base,
                 "--users", str(args.users), "--spawn-rate", str(args.users), "--run-time",
                 "30m", "--customers", str(max(args.users, 20)), "--only-summary"],
                cwd=REPO / "loadtests", env=env, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )  # fmt: skip
            time.sleep(5)  # the buyers log in before anything is judged
            return process

        def stop(process: subprocess.Popen[bytes]) -> None:
            process.terminate()
            process.wait(60)

        running: list[subprocess.Popen[bytes]] = []

        def start_buyers() -> None:
            running.append(buyers())

        def stop_buyers() -> None:
            while running:
                process = running.pop()
                if process.poll() is None:
                    stop(process)

        resources.callback(stop_buyers)
        print("healthy rollout of the orders route: 0 → 10 → 50 → 100 %", flush=True)
        code, took = rollout(routing, env, admin, start_buyers)
        healthy = status(routing, env)
        report["healthy"] = {"exit": code, "seconds": round(took, 1), "state": healthy["state"]}
        print(f"  exit {code} after {took:.0f}s: {healthy['state']} — {healthy['reason']}")

        strangler("rollback", "orders", "-f", str(routing), env=env)
        # the buyers of the healthy phase are sticky to the monolith now (for an hour, as
        # on the ALB): the faulty phase's canary share goes to new clients
        stop_buyers()
        inject(routing, args.abort)
        time.sleep(2)  # the facade picks the edit up within a second
        before = lambda_counts(admin)
        print(
            f"faulty rollout: the Lambda answers {args.abort:g} % of requests with 503", flush=True
        )
        first = first_request(admin, before[0])
        code2, took2 = rollout(routing, env, admin, start_buyers, "--restart")
        ended = time.monotonic()
        after = lambda_counts(admin)
        first.set()
        exposed = ended - first.at if first.at is not None else 0.0
        faulty = status(routing, env)
        failed = after[1] - before[1]
        canary_requests = after[0] - before[0]
        # the canary's request rate while it had traffic: from its first request to the
        # rollback (the buyers log in first, and the route is at 0 % before step 1)
        rate = canary_requests / exposed if exposed > 0 else 0.0
        bound = rate * args.interval * args.abort / 100
        report["faulty"] = {
            "exit": code2,
            "seconds": round(took2, 1),
            "state": faulty["state"],
            "reason": faulty["reason"],
            "lambda_requests": canary_requests,
            "failed_requests": failed,
            "seconds_with_traffic": round(exposed, 1),
            "one_interval_bound": round(bound, 1),
        }
        print(f"  exit {code2} after {took2:.0f}s: {faulty['state']} — {faulty['reason']}")
        print(
            f"  {failed} users' requests failed before the rollback ({canary_requests} reached "
            f"the Lambda in the {exposed:.1f}s it had traffic); one analysis interval "
            f"({args.interval:g}s) at the canary's share fails about {bound:.0f}"
        )
    ok = report["healthy"]["exit"] == 0 and report["faulty"]["exit"] == 1
    report["ok"] = ok
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    print("ok" if ok else "FAILED: a rollout did not end as it should")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
