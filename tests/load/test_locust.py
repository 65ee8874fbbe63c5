"""Load tests that see the cut: the flip-under-load scenario keeps every phase's share
within tolerance with no failed request (and fails when the facade does not follow), the
per-backend tally adds up to locust's totals — across distributed workers, and in
``make loadtest`` against the whole demo stack."""

from __future__ import annotations

import csv
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.facade.conftest import free_port
from tests.facade.proxy import Proxy, proxy
from tests.facade.upstream import upstream

REPO = Path(__file__).resolve().parents[2]
LOCUST = str(Path(sys.executable).with_name("locust"))
PYTHON = sys.executable

ROUTING = """\
version: 1
backends:
  monolith: {{kind: monolith, url: '{monolith}'}}
  orders: {{kind: url, url: '{orders}'}}
  catalog: {{kind: url, url: '{catalog}'}}
routes:
  - {{name: catalog, match: {{paths: ['/api/catalog/*']}}, targets: {{catalog: 100}}}}
  - name: orders
    match: {{paths: ['/api/orders', '/api/orders/*']}}
    targets: {{monolith: 90, orders: 10}}
    stickiness: {{duration: 60}}
default: monolith
"""


@pytest.fixture
def facade(tmp_path: Path) -> Iterator[Proxy]:
    """The facade in front of three echoing backends; orders on a 10 % canary."""
    with upstream("monolith") as a, upstream("orders") as b, upstream("catalog") as c:
        routing = tmp_path / "routing.yaml"
        routing.write_text(ROUTING.format(monolith=a.url, orders=b.url, catalog=c.url))
        with proxy(routing) as running:
            yield running


TOTALS = re.compile(r"backends: (\d+) requests, (\d+) failed; locust: (\d+) requests, (\d+) failed")


def _totals_agree(output: str) -> int:
    """The run's own comparison of the per-backend rows with locust's final totals."""
    found = TOTALS.search(output)
    assert found, output
    mine, mine_failed, theirs, theirs_failed = map(int, found.groups())
    assert (mine, mine_failed) == (theirs, theirs_failed)
    return mine


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _flip(facade: Proxy, routing: Path, out: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [LOCUST, "-f", str(REPO / "loadtests" / "flip.py"), "--headless", "--host", facade.url,
         "--flip-routing", str(routing), "--flip-admin", facade.admin_url,
         "--flip-path", "/api/orders/7/", "--flip-seconds", "2.5",
         "--flip-users", "6", "--csv", str(out), "--only-summary"],
        capture_output=True, text=True, timeout=120, check=False, cwd=REPO,
    )  # fmt: skip


@pytest.mark.timeout(180)
def test_flip_under_load_keeps_every_phase_within_tolerance_with_no_failure(
    facade: Proxy, tmp_path: Path
) -> None:
    result = _flip(facade, facade.routing, tmp_path / "flip")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("ok   ") == 5, result.stdout
    assert "failed requests: 0" in result.stdout
    rows = [r for r in _rows(tmp_path / "flip_backends.csv") if r["phase"] != "transition"]
    share = {(r["phase"], r["backend"]): float(r["share_percent"]) for r in rows}
    assert share[("1:0%", "monolith")] == 100.0
    assert 5 < share[("2:10%", "orders")] < 15
    assert 40 < share[("3:50%", "orders")] < 60
    assert share[("4:100%", "orders")] == 100.0
    assert share[("5:0%", "monolith")] == 100.0
    assert all(int(r["failures"]) == 0 for r in rows)
    assert "targets: {monolith: 90, orders: 10}" in facade.routing.read_text()  # as before


@pytest.mark.timeout(180)
def test_the_flip_verdict_fails_when_the_facade_does_not_follow_the_shifts(
    facade: Proxy, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "not-served.yaml"
    shutil.copy(facade.routing, elsewhere)  # shifted, but the facade reads another file
    result = _flip(facade, elsewhere, tmp_path / "flip")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "FAIL 1:0%" in result.stdout
    assert "FAIL 4:100%" in result.stdout


@pytest.mark.timeout(180)
def test_distributed_workers_tallies_add_up_to_locusts_totals(
    facade: Proxy, tmp_path: Path
) -> None:
    port = free_port()
    out = tmp_path / "shop"
    locustfile = str(REPO / "loadtests" / "locustfile.py")
    master = subprocess.Popen(
        [LOCUST, "-f", locustfile, "--headless", "--host", facade.url, "--users", "8",
         "--spawn-rate", "8", "--run-time", "8s", "--master", "--master-bind-host", "127.0.0.1",
         "--master-bind-port", str(port), "--expect-workers", "2", "--csv", str(out),
         "--only-summary"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO,
    )  # fmt: skip
    argv = [LOCUST, "-f", locustfile, "--worker", "--master-host", "127.0.0.1",
              "--master-port", str(port)]  # fmt: skip
    workers = [
        subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO)
        for _ in range(2)
    ]
    try:
        output, _ = master.communicate(timeout=120)
    finally:
        for worker in workers:
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()
    assert master.returncode == 0, output
    backends = _rows(tmp_path / "shop_backends.csv")
    # the master runs no users: every row it reports came from the workers' reports
    assert sum(int(r["requests"]) for r in backends) == _totals_agree(output) > 10
    assert {r["backend"] for r in backends} >= {"catalog", "monolith"}
    assert "Requests by the backend that answered" in output


@pytest.mark.postgresql
@pytest.mark.timeout(420)
def test_make_loadtest_against_the_demo_stack_reports_backends_that_add_up(
    tmp_path: Path,
) -> None:
    from demo_stack import sample_routing, stack

    routing, base = sample_routing(tmp_path)
    env = {**os.environ, "STRANGLER_VAR_DIR": str(tmp_path), "DATABASE_URL": "",
           "CATALOG_DATABASE_URL": ""}  # fmt: skip
    with stack(routing, env, customers=20):
        result = subprocess.run(
            [PYTHON, str(REPO / "loadtests" / "loadtest.py"), "--host", base, "--users", "10",
             "--spawn-rate", "10", "--run-time", "15s", "--customers", "20",
             "--results", str(tmp_path / "results")],
            capture_output=True, text=True, timeout=240, check=False, cwd=REPO,
        )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    (folder,) = (tmp_path / "results").iterdir()
    assert (folder / "report.html").stat().st_size > 1000
    backends = _rows(folder / "shop_backends.csv")
    assert sum(int(r["requests"]) for r in backends) == _totals_agree(result.stdout) > 20
    assert {r["backend"] for r in backends} >= {"catalog", "monolith"}
    assert "Requests by the backend that answered" in result.stdout


def test_make_loadtest_says_to_start_the_stack_when_nothing_answers(tmp_path: Path) -> None:
    result = subprocess.run(
        [PYTHON, str(REPO / "loadtests" / "loadtest.py"), "--host",
         f"http://127.0.0.1:{free_port()}", "--results", str(tmp_path)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert "start the stack first (make demo)" in result.stderr
