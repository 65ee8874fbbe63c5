"""Review of the dashboard's shadow panel: it must judge a route's comparisons with the
route's own ``shadow.thresholds`` — as ``strangler shadow report`` and the rollout's
shadow gate do — not with the defaults."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from facade.dashboard import views
from facade.routing.loader import load_table
from facade.shadow import store
from facade.shadow.store import SHADOW, Comparison, Example, Writer
from tests.facade.proxy import Proxy, proxy
from tests.facade.upstream import upstream

TOKEN = "review-shadow-token"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
# a route whose owners allow 50 points of difference on top of the noise: a field that
# differs in 20 % of the pairs is not a real difference for this route
ROUTING = """\
version: 1
backends:
  monolith: {kind: monolith, url: "%(url)s"}
  orders: {kind: ecs, url: "%(url)s"}
routes:
  - name: orders
    match: {paths: ["/api/orders/*"]}
    targets: {monolith: 100}
    shadow: {to: orders, store: var/s.sqlite3, thresholds: {relative: 20, absolute: 50}}
default: monolith
"""


def _store(path: Path) -> None:
    point = "GET /api/orders/{id}/"
    total = Example("$.total", "$.total", "GET /api/orders/4/", [], '"40.00"', '"41.00"')
    rows = [Comparison("orders", point, SHADOW, ())] * 32
    rows += [Comparison("orders", point, SHADOW, ("$.total",), (total,))] * 8
    writer = Writer(path, {})
    writer.write(rows, {})
    writer.close()


def _setup(directory: Path, url: str = "http://127.0.0.1:9") -> Path:
    (directory / "var").mkdir(exist_ok=True)
    _store(directory / "var" / "s.sqlite3")
    routing = directory / "routing.yaml"
    routing.write_text(ROUTING % {"url": url})
    return routing


def _cli_view(routing: Path) -> store.Report:
    """What ``strangler shadow report orders`` (and the rollout's shadow gate) read."""
    table = load_table(routing)
    rules = table.route("orders").shadow
    assert rules is not None
    assert rules.absolute == pytest.approx(0.5)
    return store.report(
        store.store_file(table, "orders"),
        "orders",
        relative=rules.relative,
        absolute=rules.absolute,
    )


def test_the_panel_judges_with_the_routes_thresholds(tmp_path: Path) -> None:
    routing = _setup(tmp_path)
    expected = _cli_view(routing)
    assert expected.summary.differing == 0  # not real at this route's 50-point margin
    found = views.shadows(load_table(routing))
    assert found is not None
    (view,) = found
    assert view["error"] is None
    # the panel must agree with `shadow report` and the gate: nothing differs for real
    assert view["summary"]["differing"] == expected.summary.differing
    assert view["summary"]["difference_rate"] == expected.summary.difference_rate
    assert [f["real"] for f in view["fields"]] == [False]


@pytest.fixture(scope="module")
def facade(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    directory = tmp_path_factory.mktemp("review-shadow")
    with upstream("echo") as server:
        routing = _setup(directory, server.url)
        with proxy(routing, env={"STRANGLER_ADMIN_TOKEN": TOKEN}) as served:
            yield served


def test_the_report_endpoint_is_the_cli_report_of_the_route(facade: Proxy) -> None:
    url = f"{facade.admin_url}/__facade/dashboard/shadow/orders"
    deadline = time.monotonic() + 10
    answer = httpx.get(url, headers=BEARER, timeout=5)
    while answer.status_code != 200 and time.monotonic() < deadline:
        time.sleep(0.05)
        answer = httpx.get(url, headers=BEARER, timeout=5)
    found = answer.json()
    # `strangler shadow report orders --json` reports the route's own thresholds and
    # judges with them: 0 pairs with a real difference
    assert found["thresholds"] == {"relative": pytest.approx(0.2), "absolute": pytest.approx(0.5)}
    assert found["differing"] == 0
