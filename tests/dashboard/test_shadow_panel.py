"""The dashboard's shadow panel on a real facade: a shadowed route's comparison, its
noise, the top differing JSON paths each with a stored (redacted) example pair, and the
full report behind a link — escaped, and behind the admin token like the rest."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from facade.shadow.store import NOISE, SHADOW, Comparison, Example, Writer
from tests.facade.proxy import Proxy, proxy
from tests.facade.upstream import upstream

TOKEN = "shadow-panel-token"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
ROUTING = """\
version: 1
backends:
  monolith: {kind: monolith, url: "%(url)s"}
  orders: {kind: ecs, url: "%(url)s"}
routes:
  - name: orders
    match: {paths: ["/api/orders/*"]}
    targets: {monolith: 100}
    shadow: {to: orders, store: var/s.sqlite3}
  - name: catalog
    match: {paths: ["/api/products/*"]}
    targets: {monolith: 100}
default: monolith
"""
HOSTILE = '"<script>alert(1)</script>"'


def _store(path: Path) -> None:
    point = "GET /api/orders/{id}/"
    total = Example(
        "$.total", "$.total", "GET /api/orders/4/", [("accept", "application/json")], '"40.00"',
        HOSTILE,
    )  # fmt: skip
    note = Example("$.note", "$.note", "GET /api/orders/9/", [], '"a"', '"b"')
    rows = [Comparison("orders", point, NOISE, ())] * 18
    rows += [Comparison("orders", point, NOISE, ("$.at",))] * 2
    rows += [Comparison("orders", point, SHADOW, ())] * 30
    rows += [Comparison("orders", point, SHADOW, ("$.at",))] * 2
    rows += [Comparison("orders", point, SHADOW, ("$.total",), (total,))] * 8
    rows += [Comparison("orders", "GET /api/orders/", SHADOW, ("$.note",), (note,))]
    writer = Writer(path, {})
    writer.write(rows, {("orders", "dropped:concurrency"): 3})
    writer.close()


@pytest.fixture(scope="module")
def facade(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    directory = tmp_path_factory.mktemp("shadow-panel")
    (directory / "var").mkdir()
    _store(directory / "var" / "s.sqlite3")
    with upstream("echo") as server:
        routing = directory / "routing.yaml"
        routing.write_text(ROUTING % {"url": server.url})
        with proxy(routing, env={"STRANGLER_ADMIN_TOKEN": TOKEN}) as served:
            yield served


def panel(facade: Proxy) -> str:
    """The shadow panel once the store was read (it is read on a thread, then kept)."""
    deadline = time.monotonic() + 10
    while True:
        html = httpx.get(
            f"{facade.admin_url}/__facade/dashboard/panel/shadows", headers=BEARER, timeout=5
        ).text
        if "reading…" not in html or time.monotonic() > deadline:
            return html
        time.sleep(0.05)


def test_the_panel_shows_rates_top_paths_and_an_example_pair(facade: Proxy) -> None:
    html = panel(facade)
    # 41 compared: 8 + 1 with a real difference; $.at differs as often as in the noise
    row = html.split('<tr data-route="orders">', 1)[1].split("</tr>", 1)[0]
    cells = [c.split(">", 1)[1].split("<", 1)[0] for c in row.split("<td")[1:]]
    assert cells[:7] == ["orders", "41", "9", "21.95 %", "10.00 %", "3", "0"]
    assert 'data-route="catalog"' not in html  # no shadow block, no row
    fields = html.split('<table class="shadow-fields" data-route="orders">', 1)[1]
    order = [part.split('"', 1)[0] for part in fields.split('data-field="')[1:]]
    # real differences first, the most pairs affected first; the noise after them
    assert order == ["$.total", "$.note", "$.at"]
    total = fields.split('data-field="$.total"', 1)[1].split("</tr>", 1)[0]
    assert "20.00 %" in total
    assert "differs" in total
    assert "GET /api/orders/4/" in total
    assert "40.00" in total
    at = fields.split('data-field="$.at"', 1)[1].split("</tr>", 1)[0]
    assert "noise" in at
    assert "10.00 %" in at


def test_an_example_is_shown_escaped(facade: Proxy) -> None:
    html = panel(facade)
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_the_report_link_serves_the_whole_report_behind_the_token(facade: Proxy) -> None:
    html = panel(facade)
    href = html.split('href="', 1)[1].split('"', 1)[0]
    assert href == "/__facade/dashboard/shadow/orders"
    url = facade.admin_url + href
    assert httpx.get(url, timeout=5).status_code == 401
    found = httpx.get(url, headers=BEARER, timeout=5).json()
    assert (found["compared"], found["differing"], found["dropped"]) == (41, 9, 3)
    assert (found["noise_compared"], found["noise_differing"]) == (20, 2)
    fields = {f["field"]: f for e in found["endpoints"] for f in e["fields"]}
    assert fields["$.total"]["examples"][0]["shadow"] == HOSTILE
    missing = httpx.get(
        f"{facade.admin_url}/__facade/dashboard/shadow/catalog", headers=BEARER, timeout=5
    )
    assert missing.status_code == 404
