"""The dashboard's HTTP surface on a real facade: who may see it, how a change is
confirmed, what it ships, and the sum of all workers."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from facade.dashboard.endpoints import COOKIE, session
from facade.routing.loader import load_table
from tests.facade.proxy import Proxy, proxy
from tests.facade.upstream import upstream

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "endpoint-test-token"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
HTMX = {"HX-Request": "true"}
ROUTING = """\
version: 1
facade:
  audit_log: audit.jsonl
backends:
  monolith: {kind: monolith, url: "%(url)s"}
  orders: {kind: ecs, url: "%(url)s"}
  orders-next: {kind: ecs, url: "%(url)s"}
routes:
  - name: orders
    match: {paths: ["/api/orders/*"]}
    targets: {monolith: 60, orders: 30, orders-next: 10}
default: monolith
"""


@pytest.fixture(scope="module")
def facade(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    directory = tmp_path_factory.mktemp("endpoints")
    with upstream("echo") as server:
        routing = directory / "routing.yaml"
        routing.write_text(ROUTING % {"url": server.url})
        with proxy(routing, env={"STRANGLER_ADMIN_TOKEN": TOKEN}) as served:
            yield served


def page(facade: Proxy, rest: str = "") -> str:
    return f"{facade.admin_url}/__facade/dashboard{rest}"


def shares(routing: Path) -> dict[str, float]:
    return {t.backend: t.percent for t in load_table(routing).route("orders").targets}


def test_without_an_admin_token_there_is_no_dashboard(tmp_path: Path) -> None:
    with upstream("echo") as server:
        routing = tmp_path / "routing.yaml"
        routing.write_text(ROUTING % {"url": server.url})
        with proxy(routing, env={"STRANGLER_ADMIN_TOKEN": ""}) as served:
            answer = httpx.get(page(served), headers=BEARER, timeout=5)
    assert answer.status_code == 404
    assert "STRANGLER_ADMIN_TOKEN" in answer.text


def test_the_public_listener_never_serves_the_dashboard(facade: Proxy) -> None:
    for rest in ("", "/panel/routes", "/static/vendor/htmx.min.js", "/series"):
        answer = httpx.get(f"{facade.url}/__facade/dashboard{rest}", headers=BEARER, timeout=5)
        assert answer.status_code == 404, rest


@pytest.mark.parametrize(
    "rest", ["", "/panel/routes", "/series", "/static/dashboard.js", "/action/shift/orders"]
)
def test_every_part_needs_the_token(facade: Proxy, rest: str) -> None:
    assert httpx.get(page(facade, rest), timeout=5).status_code == 401
    wrong = {"Authorization": "Bearer not-it"}
    assert httpx.get(page(facade, rest), headers=wrong, timeout=5).status_code == 401
    forged = {"Cookie": f"{COOKIE}={session('not-it')}"}
    assert httpx.get(page(facade, rest), headers=forged, timeout=5).status_code == 401
    assert httpx.get(page(facade, rest), headers=BEARER, timeout=5).status_code == 200


def test_signing_in_sets_a_cookie_that_proves_the_token_without_being_it(facade: Proxy) -> None:
    refused = httpx.post(page(facade, "/login"), data={"token": "nope"}, timeout=5)
    assert refused.status_code == 401
    assert "set-cookie" not in refused.headers
    answer = httpx.post(page(facade, "/login"), data={"token": TOKEN}, timeout=5)
    assert answer.status_code == 303
    cookie = answer.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie
    assert TOKEN not in cookie
    value = re.match(rf"{COOKIE}=([0-9a-f]+);", cookie)
    assert value is not None
    again = httpx.get(page(facade), headers={"Cookie": f"{COOKIE}={value.group(1)}"}, timeout=5)
    assert again.status_code == 200
    assert 'id="routes"' in again.text
    assert "script-src 'self'" in again.headers["content-security-policy"]


def test_a_change_carried_by_the_cookie_needs_the_htmx_header(facade: Proxy) -> None:
    """A cross-site form can send the cookie along (were it not SameSite) but not a
    custom header: a POST without it changes nothing."""
    cookie = {"Cookie": f"{COOKIE}={session(TOKEN)}"}
    before = facade.routing.read_text()
    form = {"to": "orders", "percent": "35"}
    answer = httpx.post(page(facade, "/apply/shift/orders"), data=form, headers=cookie, timeout=5)
    assert answer.status_code == 403
    assert facade.routing.read_text() == before
    answer = httpx.post(
        page(facade, "/preview/shift/orders"), data=form, headers={**cookie, **HTMX}, timeout=5
    )
    assert answer.status_code == 200
    assert 'data-backend="orders"' in answer.text
    assert facade.routing.read_text() == before  # a preview writes nothing


def test_a_confirmed_edit_is_refused_when_the_route_changed_since_its_preview(
    facade: Proxy,
) -> None:
    """The confirmation carries the weights it showed; when the file would now end up
    elsewhere (another edit came first), the edit is refused with the reason and the
    other edit stays."""
    preview = httpx.post(
        page(facade, "/preview/shift/orders"),
        data={"to": "orders", "percent": "50"},
        headers=BEARER,
        timeout=5,
    )
    assert preview.status_code == 200
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', preview.text))
    start = shares(facade.routing)
    assert fields["after.orders"] == "50"
    done = subprocess.run(
        [sys.executable, "-m", "facade.cli", "shift", "orders", "--to", "orders-next",
         "--percent", "30", "--routing", str(facade.routing)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    meanwhile = shares(facade.routing)
    assert meanwhile != start
    answer = httpx.post(page(facade, "/apply/shift/orders"), data=fields, headers=BEARER, timeout=5)
    assert answer.status_code == 409
    assert "changed since the preview" in answer.text
    assert shares(facade.routing) == meanwhile
    # confirmed as previewed, the edit goes through and is in the audit log
    fresh = httpx.post(
        page(facade, "/preview/shift/orders"),
        data={"to": "orders", "percent": "50"},
        headers=BEARER,
        timeout=5,
    )
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', fresh.text))
    answer = httpx.post(page(facade, "/apply/shift/orders"), data=fields, headers=BEARER, timeout=5)
    assert answer.status_code == 200, answer.text
    after = {
        k.removeprefix("after."): float(v) for k, v in fields.items() if k.startswith("after.")
    }
    assert shares(facade.routing) == after
    last = json.loads((facade.routing.parent / "audit.jsonl").read_text().splitlines()[-1])
    assert (last["who"], last["after"]) == ("dashboard", after)
    routes = httpx.get(page(facade, "/panel/routes"), headers=BEARER, timeout=5).text
    assert 'data-percent="50"' in routes  # this worker serves the new table at once


def test_the_shipped_libraries_are_the_pinned_npm_files() -> None:
    """htmx and uPlot inside the package are byte for byte the files of the versions
    package.json pins (checked where ``npm ci`` has run)."""
    modules = ROOT / "node_modules"
    if not (modules / "htmx.org").is_dir():
        pytest.skip("node_modules/ has no htmx.org: run make bootstrap (npm ci) to compare")
    pins = json.loads((ROOT / "package.json").read_text())["dependencies"]
    shipped = ROOT / "facade" / "dashboard" / "static" / "vendor"
    files = {
        "htmx.min.js": ("htmx.org", "dist/htmx.min.js"),
        "htmx.LICENSE.txt": ("htmx.org", "LICENSE"),
        "uPlot.iife.min.js": ("uplot", "dist/uPlot.iife.min.js"),
        "uPlot.min.css": ("uplot", "dist/uPlot.min.css"),
        "uPlot.LICENSE.txt": ("uplot", "LICENSE"),
    }
    assert sorted(p.name for p in shipped.iterdir()) == sorted(files)
    for name, (package, path) in files.items():
        installed = json.loads((modules / package / "package.json").read_text())["version"]
        assert installed == pins[package], f"{package}: npm ci installed {installed}"
        assert (shipped / name).read_bytes() == (modules / package / path).read_bytes(), name


def test_the_page_loads_its_libraries_from_the_facade(facade: Proxy) -> None:
    html = httpx.get(page(facade), headers=BEARER, timeout=5).text
    sources = re.findall(r'(?:src|href)="(/__facade/dashboard/static/[^"]+)"', html)
    assert len(sources) == 5
    assert not re.search(r'(?:src|href)="(?:https?:)?//', html)  # no CDN
    for source in sources:
        answer = httpx.get(f"{facade.admin_url}{source}", headers=BEARER, timeout=5)
        shipped = ROOT / "facade" / "dashboard" / source.removeprefix("/__facade/dashboard/")
        assert answer.content == shipped.read_bytes(), source


def test_with_several_workers_the_page_shows_the_sum_of_all(tmp_path: Path) -> None:
    """Requests answered by two workers are all counted, whichever worker answers the
    page: each samples the figures every worker shares."""
    sent = 120
    with upstream("echo") as server:
        routing = tmp_path / "routing.yaml"
        routing.write_text(ROUTING % {"url": server.url})
        with proxy(routing, workers=2, env={"STRANGLER_ADMIN_TOKEN": TOKEN}) as served:
            # both workers up (each answers on a new connection now and then) before traffic
            pids: set[int] = set()
            deadline = time.monotonic() + 20
            while len(pids) < 2 and time.monotonic() < deadline:
                pids.add(served.health()["pid"])
            assert len(pids) == 2, "the second worker did not answer"
            for n in range(sent):  # a new connection each: the workers share the accepts
                answer = httpx.get(f"{served.url}/api/orders/{n}", timeout=5)
                assert answer.status_code == 200
            seen: dict[int, float] = {}
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and (len(seen) < 2 or set(seen.values()) != {sent}):
                series = httpx.get(page(served, "/series"), headers=BEARER, timeout=5).json()
                backends = series["routes"].get("orders", {}).get("backends", {})
                total = sum(c or 0 for rows in backends.values() for c in rows["count"])
                seen[series["pid"]] = total
            meta = httpx.get(page(served, "/panel/meta"), headers=BEARER, timeout=5).text
    assert len(seen) >= 2, f"only worker {list(seen)} answered the dashboard"
    assert set(seen.values()) == {sent}, seen
    assert "all 2 workers" in meta
