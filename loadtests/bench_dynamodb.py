"""Which DynamoDB stand-in serves the orders load better: moto's server or dynalite.

    .venv/bin/python loadtests/bench_dynamodb.py [--threads 8] [--duration 5]
        [--dynalite DIR] [--json out.json]

Both stand-ins get the orders table (``extracted.orders.store.table_definition``, two
GSIs) and the same load, from ``--threads`` threads, each with its own boto3 client driving the
orders function's own store (``OrderStore``): place an order (claim its id, put it), read
it back, list the customer's newest page (count + 20 newest through GSI1). Each stand-in
is measured on an empty table and again after 5,000 orders are in it, because a
stand-in whose cost grows with its data will not carry a load test.

moto runs as ``python -m facade.aws_local``; dynalite (npm) runs from ``--dynalite DIR``
(a folder with ``node_modules/dynalite``, e.g. after ``npm install dynalite@4``) and is
skipped without it. Prints calls/s, p50/p99 per call and the dynalite/moto ratios;
everything listens on 127.0.0.1 and stops by itself.
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from itertools import islice
from pathlib import Path
from typing import Any

import boto3
from boto3.dynamodb.types import TypeSerializer
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from extracted.orders.store import OrderStore, create_table
from facade.aws_local import CREDENTIALS, READY_PATH

TABLE = "bench-orders"
PRELOAD = 5000


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait(url: str, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1):  # noqa: S310 - loopback
                return
        except urllib.error.HTTPError:
            return  # it answers (dynalite says 400 to a bare GET)
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not answer in {timeout}s")


@contextmanager
def stand_in(name: str, dynalite_dir: Path | None) -> Iterator[str]:
    port = _free_port()
    endpoint = f"http://127.0.0.1:{port}"
    if name == "moto":
        argv = [sys.executable, "-m", "facade.aws_local", "--port", str(port)]
        probe = endpoint + READY_PATH
    else:
        assert dynalite_dir is not None
        cli = dynalite_dir / "node_modules" / "dynalite" / "cli.js"
        argv = ["node", str(cli), "--port", str(port)]
        probe = endpoint
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait(probe, process)
        yield endpoint
    finally:
        process.terminate()
        process.wait(timeout=30)


def _client(endpoint: str) -> Any:
    config = Config(retries={"max_attempts": 1}, max_pool_connections=64)
    return boto3.client("dynamodb", endpoint_url=endpoint, config=config, **CREDENTIALS)


def _order(order_id: int, customer: int) -> dict[str, Any]:
    stamp = f"2026-11-22T10:{order_id // 60 % 60:02d}:{order_id % 60:02d}.000000Z"
    return {
        "id": order_id, "customer": customer, "status": "placed", "currency": "EUR",
        "total": Decimal("42.50"), "placed_at": stamp, "updated_at": stamp,
        "lines": [{"product": 7, "sku": "SKU-7", "quantity": 1, "unit_price": Decimal("42.50")}],
    }  # fmt: skip


def _run(endpoint: str, threads: int, duration: float, first_id: int) -> dict[str, Any]:
    """Each thread places an order (claim an id, put it), reads it back, and lists the
    customer's newest page (count + 20 newest): the orders function's calls per request."""
    timings: dict[str, list[float]] = {"place": [], "get": [], "list": []}
    errors = [0]
    lock = threading.Lock()
    stop = time.monotonic() + duration

    def worker(index: int) -> None:
        store = OrderStore(TABLE, id_base=0, client=_client(endpoint))
        local: dict[str, list[float]] = {k: [] for k in timings}
        serial = first_id + index * 10_000_000
        while time.monotonic() < stop:
            serial += 1
            customer = serial % 200
            key = f"bench-{serial}"
            for name in timings:
                started = time.perf_counter()
                try:
                    if name == "place":
                        order = {**_order(serial, customer), "id": store.claim_id(key)}
                        store.put_new(order)
                    elif name == "get":
                        store.get(serial)
                    else:
                        store.count(customer=customer, status=None)
                        list(islice(store.newest_first(customer=customer, status=None), 20))
                except (ClientError, BotoCoreError):
                    with lock:
                        errors[0] += 1
                local[name].append(time.perf_counter() - started)
        with lock:
            for name, values in local.items():
                timings[name] += values

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    started = time.monotonic()
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    elapsed = time.monotonic() - started
    requests = len(timings["place"]) + len(timings["get"]) + len(timings["list"])
    result: dict[str, Any] = {"requests_per_s": requests / elapsed, "errors": errors[0]}
    for name, values in timings.items():
        values.sort()
        result[f"{name}_p50_ms"] = 1000 * statistics.median(values) if values else None
        result[f"{name}_p99_ms"] = 1000 * values[int(len(values) * 0.99)] if values else None
    return result


def _preload(endpoint: str, count: int) -> float:
    client = _client(endpoint)
    started = time.monotonic()
    for start in range(0, count, 25):
        items = [
            {"PutRequest": {"Item": _item(_order(i, i % 200))}} for i in range(start, start + 25)
        ]
        client.batch_write_item(RequestItems={TABLE: items})
    return count / (time.monotonic() - started)


def _item(order: dict[str, Any]) -> dict[str, Any]:
    sort_key = f"{order['placed_at']}#{order['id']:012d}"
    return {
        k: TypeSerializer().serialize(v)
        for k, v in {
            **order, "PK": f"ORDER#{order['id']}", "SK": "ORDER",
            "GSI1PK": f"CUSTOMER#{order['customer']}", "GSI1SK": sort_key,
            "GSI2PK": "STATUS#placed", "GSI2SK": sort_key,
        }.items()
    }  # fmt: skip


def measure(name: str, args: argparse.Namespace) -> dict[str, Any]:
    with stand_in(name, args.dynalite) as endpoint:
        create_table(_client(endpoint), TABLE)
        empty = _run(endpoint, args.threads, args.duration, 1_000_000)
        preload_rate = _preload(endpoint, PRELOAD)
        loaded = _run(endpoint, args.threads, args.duration, 100_000_000)
        return {"empty": empty, "loaded": loaded, "batch_writes_per_s": preload_rate}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--dynalite", type=Path, default=None, help="folder with node_modules")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    names = ["moto"] + (["dynalite"] if args.dynalite else [])
    results = {name: measure(name, args) for name in names}
    print(f"{args.threads} threads, {args.duration:g}s per phase, {PRELOAD} orders preloaded")
    header = f"{'stand-in':<9} {'table':<7} {'requests/s':>10} {'place p50/p99':>14} "
    print(header + f"{'get p50/p99':>14} {'list p50/p99':>14}  errors")
    for name, result in results.items():
        for phase in ("empty", "loaded"):
            r = result[phase]
            cells = "".join(
                f" {r[f'{op}_p50_ms']:6.1f}/{r[f'{op}_p99_ms']:6.1f}"
                for op in ("place", "get", "list")
            )
            print(f"{name:<9} {phase:<7} {r['requests_per_s']:10.0f}{cells}  {r['errors']}")
        print(f"{name:<9} batch writes {result['batch_writes_per_s']:.0f} items/s")
    if "dynalite" in results:
        for phase in ("empty", "loaded"):
            ours, theirs = results["dynalite"][phase], results["moto"][phase]
            ratio = ours["requests_per_s"] / theirs["requests_per_s"]
            print(f"dynalite/moto requests/s, {phase} table: {ratio:.2f}x")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
