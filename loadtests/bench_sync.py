"""Data-sync throughput and lag, monolith → catalog service, measured end to end.

    .venv/bin/python loadtests/bench_sync.py [--rate 200] [--duration 10] [--burst 10000]
        [--json out.json]

Two scratch PostgreSQL databases (the monolith's, seeded, and the catalog service's,
filled by ``import_catalog``), the SQS stand-in (fauxqs when installed), and the real
processes: one ``outbox_relay`` and one ``inbox_consumer``. Two phases:

* **steady**: a writer changes ``--rate`` stock levels per second for ``--duration``
  seconds, each in its own transaction (each row once, so every event's version is the
  one finally applied). Lag per event = applied in the catalog database minus committed in
  the monolith's outbox; p50/p95/p99 and max are printed.
* **burst**: ``--burst`` events are written at once (a backfill of stock levels and
  products) and the time until the last is applied gives events/s through one relay and
  one consumer.

Everything listens on 127.0.0.1, and the script stops its processes and drops its
databases when done.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import boto3
import psycopg

from facade import aws_local
from facade.routing.loader import load_table
from facade.sync.queues import create_queues

PG = os.environ.get("STRANGLER_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")


@contextmanager
def database(prefix: str) -> Iterator[str]:
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield PG.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(PG, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def manage(module: str, *args: str, env: dict[str, str]) -> str:
    result = subprocess.run(
        [sys.executable, "-m", module, *args],
        env={**os.environ, **env}, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if result.returncode:
        raise RuntimeError(f"{module} {args[0]} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def rows(url: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(sql, params).fetchall()


def wait_applied(catalog: str, versions: int, since: int, timeout: float) -> float:
    """Seconds until ``versions`` events above ``since`` are applied."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        (applied,) = rows(
            catalog, "SELECT count(*) FROM strangler_sync_appliedversion WHERE version > %s", since
        )[0]
        if applied >= versions:
            return time.monotonic() - started
        time.sleep(0.05)
    raise TimeoutError(f"only part of {versions} events applied in {timeout:.0f}s")


def steady(monolith: str, catalog: str, rate: int, duration: float) -> dict[str, Any]:
    ids = [r[0] for r in rows(monolith, "SELECT id FROM catalog_stocklevel ORDER BY id")]
    count = min(len(ids), int(rate * duration))
    (since,) = rows(monolith, "SELECT coalesce(max(id), 0) FROM strangler_sync_outboxevent")[0]
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(rate), ",".join(map(str, ids[:count]))],
        env={**os.environ, "DATABASE_URL": monolith, "DJANGO_SETTINGS_MODULE": "monolith.settings"},
    )  # fmt: skip
    writer.wait()
    wait_applied(catalog, count, since, 120)
    committed = dict(
        rows(
            monolith,
            "SELECT id, extract(epoch from created_at) FROM strangler_sync_outboxevent"
            " WHERE id > %s",
            since,
        )
    )
    applied = rows(
        catalog,
        "SELECT version, extract(epoch from applied_at) FROM strangler_sync_appliedversion "
        "WHERE version > %s",
        since,
    )
    lags = sorted(float(at) - float(committed[v]) for v, at in applied if v in committed)
    q = statistics.quantiles(lags, n=100)
    return {
        "events": len(lags),
        "rate": rate,
        "lag_p50_ms": 1000 * q[49],
        "lag_p95_ms": 1000 * q[94],
        "lag_p99_ms": 1000 * q[98],
        "lag_max_ms": 1000 * lags[-1],
    }


WRITER = """
import sys, time, django
django.setup()
from django.db import transaction
from monolith.catalog.models import StockLevel
from facade.sync.django.recording import record_ids
from django.db.models import F
rate, ids = float(sys.argv[1]), [int(i) for i in sys.argv[2].split(",")]
start = time.monotonic()
for n, pk in enumerate(ids):
    pause = start + n / rate - time.monotonic()
    if pause > 0:
        time.sleep(pause)
    with transaction.atomic():
        StockLevel.objects.filter(pk=pk).update(on_hand=F("on_hand") + 1)
        record_ids(StockLevel, [pk])
"""


def burst(monolith: str, catalog: str, size: int, env: dict[str, str]) -> dict[str, Any]:
    """Backfill rounds until ``size`` events are written; time the writing, the
    publishing into SQS (outbox empty) and the applying (newest version applied)."""
    (since,) = rows(monolith, "SELECT coalesce(max(id), 0) FROM strangler_sync_outboxevent")[0]
    started = time.monotonic()
    written = 0
    while written < size:
        for label in ("catalog.StockLevel", "catalog.Product"):
            args = ("outbox_backfill", label, "--restart", "--chunk", "5000")
            manage("monolith.manage", *args, env=env)
        count_sql = "SELECT count(*) FROM strangler_sync_outboxevent WHERE id > %s"
        written = int(rows(monolith, count_sql, since)[0][0])
    wrote = time.monotonic() - started
    pending_sql = "SELECT count(*) FROM strangler_sync_outboxevent WHERE published_at IS NULL"
    _wait(lambda: rows(monolith, pending_sql)[0][0] == 0, "the outbox did not empty")
    published = time.monotonic() - started
    # end to end per entity's backfill, as the database saw it: its first row written →
    # its last row accepted by SQS (a long backfill's figure: no process start-up in it)
    windows = rows(
        monolith,
        "SELECT aggregate, count(*), extract(epoch from max(published_at) - min(created_at)) "
        "FROM strangler_sync_outboxevent WHERE id > %s GROUP BY aggregate",
        since,
    )
    backfill_rates = {label: int(n) / float(s) for label, n, s in windows if s and float(s) > 0}
    # entities repeat across rounds: wait until the newest version of each is applied
    (latest,) = rows(monolith, "SELECT max(id) FROM strangler_sync_outboxevent")[0]
    applied_sql = "SELECT count(*) FROM strangler_sync_appliedversion WHERE version = %s"
    _wait(lambda: rows(catalog, applied_sql, latest)[0][0] > 0, "the burst did not drain")
    elapsed = time.monotonic() - started
    return {
        "events": written,
        "write_s": wrote,
        "published_s": published,
        "published_per_s": written / published,
        "backfill_rows_per_s": backfill_rates,
        "delivered_s": elapsed,
        "events_per_s": written / elapsed,
    }


def _wait(done: Any, failure: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{failure} in {timeout:.0f} s")
        time.sleep(0.05)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=int, default=200)
    parser.add_argument("--duration", type=float, default=10)
    parser.add_argument("--burst", type=int, default=10_000)
    parser.add_argument("--relays", type=int, default=1)
    parser.add_argument("--consumers", type=int, default=1)
    parser.add_argument("--pollers", type=int, default=None, help="receive loops per consumer")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    with ExitStack() as stack:
        endpoints = stack.enter_context(aws_local.running(dynamodb_port=None))
        monolith = stack.enter_context(database("bench_mono"))
        catalog = stack.enter_context(database("bench_cat"))
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        routing = tmp / "routing.yaml"
        routing.write_text(
            "version: 1\nbackends:\n  monolith: {kind: monolith, url: 'http://127.0.0.1:1'}\n"
            "  catalog: {kind: ecs, url: 'http://127.0.0.1:2'}\nroutes: []\n"
            "sync:\n  catalog: {from: monolith, to: catalog, "
            f"queue: bench-{uuid.uuid4().hex[:8]}.fifo}}\n"
        )
        sqs = boto3.client("sqs", endpoint_url=endpoints.sqs, **aws_local.CREDENTIALS)
        create_queues(sqs, load_table(routing).stream("catalog"))
        mono_env = {"DATABASE_URL": monolith, "DJANGO_SETTINGS_MODULE": "monolith.settings"}
        manage("monolith.manage", "migrate", "--noinput", "-v", "0", env=mono_env)
        size = max(args.burst // 2, int(args.rate * args.duration))
        manage(
            "monolith.manage",
            "seed",
            "--products",
            str(size),
            "--customers",
            "5",
            "--orders",
            "0",
            env=mono_env,
        )
        cat_env = {"CATALOG_DATABASE_URL": catalog}
        manage("extracted.catalog.manage", "migrate", "--noinput", "-v", "0", env=cat_env)
        manage("extracted.catalog.manage", "import_catalog", "--source", monolith, env=cat_env)
        common = {**endpoints.environment(), "STRANGLER_ROUTING": str(routing)}
        pollers = ["--pollers", str(args.pollers)] if args.pollers else []
        workers = [
            subprocess.Popen(
                [sys.executable, "-m", module, command, *extra],
                env={**os.environ, **common, **env},
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for module, command, env, extra in (
                [("monolith.manage", "outbox_relay", mono_env, [])] * args.relays
                + [("extracted.catalog.manage", "inbox_consumer", cat_env, pollers)]
                * args.consumers
            )
        ]
        try:
            results = {
                "steady": steady(monolith, catalog, args.rate, args.duration),
                "burst": burst(monolith, catalog, args.burst, {**common, **mono_env}),
            }
        finally:
            for worker in workers:
                worker.terminate()
                worker.wait(timeout=30)
    s, b = results["steady"], results["burst"]
    print(
        f"steady: {s['events']} events at {s['rate']}/s, commit → applied lag "
        f"p50 {s['lag_p50_ms']:.0f} ms, p95 {s['lag_p95_ms']:.0f} ms, "
        f"p99 {s['lag_p99_ms']:.0f} ms, max {s['lag_max_ms']:.0f} ms"
    )
    print(
        f"burst:  {b['events']} events written in {b['write_s']:.1f}s, in SQS after "
        f"{b['published_s']:.1f}s ({b['published_per_s']:.0f} events/s), all applied after "
        f"{b['delivered_s']:.1f}s: {b['events_per_s']:.0f} events/s "
        f"({args.relays} relay(s), {args.consumers} consumer(s))"
    )
    for label, rate in b["backfill_rows_per_s"].items():
        print(
            f"backfill of {label}: {rate:.0f} rows/s from its first row written to its "
            f"last row in SQS ({rate / 5000:.2f} x the 5,000 rows/s goal)"
        )
    print(
        f"apply: {b['events_per_s'] / 1000:.2f} x the 1,000 events/s goal; steady lag p99 "
        f"{s['lag_p99_ms']:.0f} ms ({s['lag_p99_ms'] / 500:.2f} x the 500 ms ceiling)"
    )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
