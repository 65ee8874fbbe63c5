"""Both sides take order writes under load, then the data must agree.

    .venv/bin/python loadtests/soak_two_way.py [--duration 60] [--clients 8]
        [--json out.json]

Runs the whole sample topology with ``strangler up`` (the monolith on a scratch
PostgreSQL database, every worker of the sync) on free loopback ports, with the orders
route split 50/50 between the monolith and the orders Lambda and the tester override
header on. ``--clients`` shoppers, each a customer of its own, then write for
``--duration`` seconds through the facade:

* **place** an order on the shopper's home side — half the shoppers on each side, so
  that both sides take new orders in every run (the override header; left to the split,
  six shoppers all land on one side about once in 32 runs) — and pay some of them there;
* **cross over**: pay or cancel one of their earlier orders on the *other* side
  (override header) — the order must have arrived there through the sync (a 404 means
  not yet, and is retried later);
* **race**: pay an order on one side and cancel it on the other at the same moment, so
  that both sides change one order concurrently and the conflict rule must settle it.

Then the sync drains (outbox, queues and in-flight messages empty on both orders
streams) and the script checks, printing each figure:

* **no id collision**: every order id answered is unique, the monolith's below
  the pair's id split (routing.yaml), the Lambda's from it up;
* **no echo**: no order's version is greater than the number of changes made to it
  (an echoed change would add one), and the monolith's outbox holds exactly one event per
  change made *on the monolith* to the Lambda's orders (applied ones publish nothing);
* **stock given back exactly once**: each product's stock fell by exactly the units of
  its run orders that did not end cancelled, whichever side cancelled them;
* **zero drift**: ``strangler sync verify`` on the orders stream exits 0;
* no request failed (5xx or a broken connection) and no message is in a DLQ.

Exit status 1 when a check fails. Everything listens on 127.0.0.1 and stops when the
script ends; the scratch database is dropped.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import sqlite3
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
from bench_sync import database
from demo_stack import REPO, sample_routing, stack, strangler

from facade.routing.loader import load_table

OVERRIDE = "X-Strangler-Backend-Override"
BACKEND = "x-strangler-backend"
SIDES = ("monolith", "orders")
ORDER_STREAMS = ("orders-to-lambda", "orders-to-monolith")
# the two-way pair's id split: the monolith's ids below it, the Lambda's from it up
_PAIR = load_table(REPO / "routing.yaml").stream(ORDER_STREAMS[0]).two_way
assert _PAIR is not None
assert _PAIR.id_split is not None
ORDER_ID_SPLIT = _PAIR.id_split
_BUSY = ("queued", "in_flight", "outbox_pending", "pending")  # sync status figures


@dataclass
class Tally:
    """What the shoppers did, as the facade answered it."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    placed: dict[int, str] = field(default_factory=dict)  # order id → side that placed it
    ids_answered: list[int] = field(default_factory=list)
    changes: Counter[int] = field(default_factory=Counter)  # successful writes per order
    lines: dict[int, list[tuple[int, int]]] = field(default_factory=dict)
    monolith_changes_of_lambda_orders: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    races: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)

    def count(self, what: str) -> None:
        with self.lock:
            self.outcomes[what] += 1

    def changed(self, order_id: int, side: str) -> None:
        with self.lock:
            self.changes[order_id] += 1
            if side == "monolith" and self.placed.get(order_id) == "orders":
                self.monolith_changes_of_lambda_orders += 1


class Shopper:
    def __init__(
        self, base: str, token: str, products: list[int], tally: Tally, seed: int, home: str
    ):
        self.home = home  # the side its orders are placed on
        self.sticky = httpx.Client(base_url=base, timeout=30)  # keeps the sticky cookie
        self.plain = httpx.Client(base_url=base, timeout=30)
        self.auth = {"Authorization": f"Token {token}"}
        self.products, self.tally = products, tally
        self.rng = random.Random(seed)
        self.mine: list[tuple[int, float]] = []  # (order id, placed at) still placed

    def request(
        self, client: httpx.Client, method: str, path: str, side: str | None = None, **kw: Any
    ) -> httpx.Response | None:
        headers = {**self.auth, **({OVERRIDE: side} if side else {})}
        try:
            response = client.request(method, path, headers=headers, **kw)
        except httpx.HTTPError as exc:
            with self.tally.lock:
                self.tally.failures.append(f"{method} {path}: {exc!r}")
            return None
        if response.status_code >= 500:
            with self.tally.lock:
                self.tally.failures.append(
                    f"{method} {path} → {response.status_code} "
                    f"({response.headers.get(BACKEND)}): {response.text[:200]}"
                )
            return None
        return response

    def place(self) -> None:
        chosen = self.rng.sample(self.products, self.rng.choice((1, 1, 2)))
        lines = [{"product": p, "quantity": self.rng.randint(1, 2)} for p in chosen]
        answer = self.request(self.sticky, "POST", "/api/orders/", self.home, json={"lines": lines})
        if answer is None:
            return
        if answer.status_code != 201:
            self.tally.count(f"place {answer.status_code} {_code(answer)}")
            return
        order_id, side = int(answer.json()["id"]), answer.headers[BACKEND]
        with self.tally.lock:
            self.tally.ids_answered.append(order_id)
            self.tally.placed[order_id] = side
            self.tally.lines[order_id] = [(x["product"], x["quantity"]) for x in lines]
        self.tally.changed(order_id, side)
        self.tally.count(f"placed on {side}")
        if self.rng.random() < 0.3:
            self.act(self.sticky, order_id, "pay", self.home)
        else:
            self.mine.append((order_id, time.monotonic()))

    def act(self, client: httpx.Client, order_id: int, action: str, side: str | None) -> int:
        answer = self.request(client, "POST", f"/api/orders/{order_id}/{action}/", side)
        if answer is None:
            return 0
        if answer.status_code == 200:
            self.tally.changed(order_id, answer.headers[BACKEND])
        self.tally.count(f"{action} {answer.status_code} {_code(answer)}".strip())
        return answer.status_code

    def cross_over(self) -> None:
        """Change an earlier order on the side that did not place it."""
        ready = [(i, at) for i, at in self.mine if time.monotonic() - at > 0.5]
        if not ready:
            return
        order_id, at = self.rng.choice(ready)
        other = "monolith" if self.tally.placed[order_id] == "orders" else "orders"
        status = self.act(self.plain, order_id, self.rng.choice(("pay", "cancel")), other)
        if status != 404:  # 404: not there yet, try again later
            self.mine.remove((order_id, at))

    def race(self) -> None:
        """Pay on one side and cancel on the other, at once."""
        ready = [(i, at) for i, at in self.mine if time.monotonic() - at > 1.0]
        if not ready:
            return
        order_id, at = self.rng.choice(ready)
        self.mine.remove((order_id, at))
        paying = self.rng.choice(SIDES)
        cancelling = "orders" if paying == "monolith" else "monolith"
        with ThreadPoolExecutor(2) as pool:
            pay = pool.submit(self.act, self.plain, order_id, "pay", paying)
            with httpx.Client(base_url=str(self.plain.base_url), timeout=30) as second:
                cancel = pool.submit(self.act, second, order_id, "cancel", cancelling)
                outcome = (pay.result(), cancel.result())
        with self.tally.lock:
            self.tally.races["both succeeded" if outcome == (200, 200) else str(outcome)] += 1

    def run(self, until: float) -> None:
        while time.monotonic() < until:
            roll = self.rng.random()
            if roll < 0.5:
                self.place()
            elif roll < 0.85:
                self.cross_over()
            else:
                self.race()
            time.sleep(self.rng.uniform(0.0, 0.05))  # a little think time
        self.sticky.close()
        self.plain.close()


def _code(answer: httpx.Response) -> str:
    try:
        return str(answer.json()["error"]["code"])
    except (ValueError, KeyError, TypeError):
        return ""


def login(base: str, index: int) -> str:
    answer = httpx.post(
        f"{base}/api/customers/token/",
        json={"email": f"customer{index}@example.com", "password": "demo-password"},
        timeout=30,
    )
    answer.raise_for_status()
    return str(answer.json()["token"])


def drained(routing: Path, env: dict[str, str], timeout: float) -> dict[str, Any]:
    """Wait until nothing of the orders streams is waiting or in flight; the last status."""
    deadline = time.monotonic() + timeout
    while True:
        report = json.loads(
            strangler("sync", "status", "--json", "-f", str(routing), env=env).stdout
        )
        busy = {
            name: {k: v for k, v in report[name].items() if k in _BUSY and v}
            for name in ORDER_STREAMS
        }
        if not any(busy.values()):
            return dict(report)
        if time.monotonic() > deadline:
            raise SystemExit(f"the sync did not drain in {timeout:.0f}s: {busy}")
        time.sleep(0.5)


def _sql(url: str, query: str, *params: Any) -> list[tuple[Any, ...]]:
    """Run ``query`` (PostgreSQL's placeholders; ``= ANY(%s)`` with a list) on the
    monolith's database: PostgreSQL, or the SQLite file of ``make demo``'s default."""
    if url.startswith("sqlite:///"):
        if "ANY(%s)" in query:
            (values,) = params
            query = query.replace("ANY(%s)", "ANY(SELECT value FROM json_each(?))")
            query = query.replace("= ANY(", "IN (")
            params = (json.dumps(list(values)),)
        path = url.removeprefix("sqlite:///")
        with contextlib.closing(sqlite3.connect(path, timeout=30)) as db, db:
            found = db.execute(query.replace("%s", "?"), params)
            return found.fetchall() if found.description else []
    with psycopg.connect(url, autocommit=True) as conn:
        cursor = conn.execute(query, params)
        return cursor.fetchall() if cursor.description else []


TROUBLE = re.compile(r"Traceback|ERROR|CRITICAL|deadlock|database is locked| 50[0-9] ")


def trouble(lines: list[str], limit: int = 80) -> list[str]:
    """The stack's log lines that explain a failure: tracebacks (with what follows each)
    and errors, from every process of ``strangler up``."""
    picked: list[str] = []
    follow = 0
    for line in lines:
        if TROUBLE.search(line):
            follow = 25 if "Traceback" in line else 0
            picked.append(line)
        elif follow:
            follow -= 1
            picked.append(line)
    return picked[-limit:]


def check(tally: Tally, url: str, stock_before: dict[int, int], verify: dict[str, Any],
          status: dict[str, Any]) -> dict[str, bool]:  # fmt: skip
    ids = tally.ids_answered
    monolith_ids = [i for i, side in tally.placed.items() if side == "monolith"]
    lambda_ids = [i for i, side in tally.placed.items() if side == "orders"]
    ours = sorted(tally.placed)
    versions = dict(
        _sql(
            url,
            "SELECT CAST(object_id AS bigint), version FROM strangler_sync_entityversion "
            "WHERE aggregate = 'orders.Order' AND CAST(object_id AS bigint) = ANY(%s)",
            ours,
        )
    )
    (published,) = _sql(
        url,
        "SELECT count(*) FROM strangler_sync_outboxevent WHERE aggregate = 'orders.Order' "
        "AND CAST(aggregate_id AS bigint) = ANY(%s)",
        lambda_ids,
    )[0]
    final = dict(_sql(url, "SELECT id, status FROM orders_order WHERE id = ANY(%s)", ours))
    kept: Counter[int] = Counter()
    for order_id, lines in tally.lines.items():
        if final.get(order_id) != "cancelled":
            for product, quantity in lines:
                kept[product] += quantity
    stock_after = dict(_sql(url, "SELECT product_id, on_hand FROM catalog_stocklevel"))
    wrong_stock = {
        p: (stock_before[p], stock_after[p], kept[p])
        for p in stock_before
        if stock_before[p] - kept[p] != stock_after[p]
    }
    print(f"  orders placed: {len(monolith_ids)} on the monolith, {len(lambda_ids)} on the Lambda")
    print(f"  writes that succeeded: {sum(tally.changes.values())}")
    print(f"  races: {dict(tally.races)}")
    print(
        "  conflicts recorded: "
        + ", ".join(f"{s} {status[s].get('conflicts', 0)}" for s in ORDER_STREAMS)
    )
    print(f"  outcomes: {dict(sorted(tally.outcomes.items()))}")
    echoes = {i: (v, tally.changes[i]) for i, v in versions.items() if v > tally.changes[i]}
    checks = {
        "ids unique": len(ids) == len(set(ids)),
        "ids disjoint by side": all(i < ORDER_ID_SPLIT for i in monolith_ids)
        and all(i >= ORDER_ID_SPLIT for i in lambda_ids),
        "every run order in the monolith": set(final) == set(ours),
        "no version above its changes (no echo)": not echoes and len(versions) == len(ours),
        "monolith outbox: one event per monolith change of a Lambda order": published
        == tally.monolith_changes_of_lambda_orders,
        "stock given back exactly once": not wrong_stock,
        "verify: zero drift": verify.get("drift") == 0,
        "no dead letters": all(status[s]["dead_letters"] == 0 for s in ORDER_STREAMS),
        "no failed request": not tally.failures,
    }
    if echoes:
        print(f"  orders with more versions than changes: {dict(list(echoes.items())[:10])}")
    if published != tally.monolith_changes_of_lambda_orders:
        print(f"  outbox events of Lambda orders: {published}, "
              f"monolith changes of them: {tally.monolith_changes_of_lambda_orders}")  # fmt: skip
    if wrong_stock:
        print(
            f"  stock (before, after, units kept) wrong for: {dict(list(wrong_stock.items())[:10])}"
        )
    for failure in tally.failures[:10]:
        print(f"  failed: {failure}")
    return checks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of writes")
    parser.add_argument("--clients", type=int, default=8, help="concurrent shoppers")
    parser.add_argument("--drain-timeout", type=float, default=180.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path, default=None, help="also write the report here")
    parser.add_argument(
        "--database", choices=("sqlite", "postgresql"), default="sqlite",
        help="the monolith's database: SQLite (make demo's default) or a scratch PostgreSQL one",
    )  # fmt: skip
    args = parser.parse_args(argv)

    with contextlib.ExitStack() as resources:
        scratch = resources.enter_context(tempfile.TemporaryDirectory(prefix="strangler-soak-"))
        if args.database == "postgresql":
            url = resources.enter_context(database("strangler_soak"))
        else:
            url = f"sqlite:///{Path(scratch) / 'monolith.sqlite3'}"  # as make demo runs it
        routing, base = sample_routing(Path(scratch))
        env = {
            **os.environ,
            "STRANGLER_VAR_DIR": scratch,
            "DATABASE_URL": url if args.database == "postgresql" else "",
            "CATALOG_DATABASE_URL": "",
        }
        strangler(
            "shift", "orders", "--to", "orders", "--percent", "50", "-f", str(routing), env=env
        )
        with stack(routing, env, customers=args.clients) as log:
            products = [
                int(p["id"])
                for p in httpx.get(f"{base}/api/catalog/products/?page_size=60", timeout=30).json()[
                    "results"
                ]
            ]
            _sql(url, "UPDATE catalog_stocklevel SET on_hand = 100000")
            stock_before = dict(_sql(url, "SELECT product_id, on_hand FROM catalog_stocklevel"))
            tally = Tally()
            shoppers = [
                Shopper(
                    base, login(base, i + 1), products, tally, args.seed * 1000 + i, SIDES[i % 2]
                )
                for i in range(args.clients)
            ]
            print(
                f"{args.clients} shoppers writing for {args.duration:.0f}s through {base} "
                "(orders 50/50 monolith/Lambda)",
                flush=True,
            )
            started = time.monotonic()
            until = started + args.duration
            threads = [threading.Thread(target=s.run, args=(until,)) for s in shoppers]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            wrote = time.monotonic() - started
            status = drained(routing, env, args.drain_timeout)
            drain = time.monotonic() - started - wrote
            verified = strangler(
                "sync", "verify", "orders-to-lambda", "--json", "-f", str(routing),
                env=env, check=False,
            )  # fmt: skip
            verify = json.loads(verified.stdout) if verified.stdout.strip() else {}
            print(f"wrote for {wrote:.1f}s, the sync drained {drain:.1f}s later")
            checks = check(tally, url, stock_before, verify, status)
            found = trouble(log)
    for name, ok in checks.items():
        print(f"  {'ok  ' if ok else 'FAIL'} {name}")
    if found and not all(checks.values()):
        print("the stack's log, where it went wrong:")
        print("".join(f"  | {line}" for line in found), end="")
    report = {
        "duration_s": round(wrote, 1),
        "drain_s": round(drain, 1),
        "clients": args.clients,
        "placed": Counter(tally.placed.values()),
        "writes": sum(tally.changes.values()),
        "races": dict(tally.races),
        "conflicts": {s: status[s].get("conflicts", 0) for s in ORDER_STREAMS},
        "outcomes": dict(tally.outcomes),
        "failures": tally.failures[:50],
        "checks": checks,
        "database": args.database,
        "log": found,
    }
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
