"""The ``strangler`` CLI: exit codes, ``--json`` output, and ``up`` end to end."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from facade.cli import cli, main
from tests.facade.conftest import LineReader, free_port
from tests.servers import ORDERS_ID_BASE

STRANGLER = str(Path(sys.executable).with_name("strangler"))


def exit_code(*argv: str) -> int:
    with pytest.raises(SystemExit) as caught:
        main(list(argv))
    return int(caught.value.code or 0)


REPO = Path(__file__).resolve().parents[2]
MONOLITH_LOCAL = """
    local:
      setup: ["{python} -m monolith.manage migrate --noinput -v 0",
              "{python} -m monolith.manage seed --if-empty --products ${SEED_PRODUCTS:-40}"]
      run: "{python} -m gunicorn -c python:monolith.gunicorn_conf --bind {bind} monolith.wsgi"
      env: {DATABASE_URL: "${DATABASE_URL:-}"}
"""


def write_routing(directory: Path, monolith_port: int, facade_port: int) -> Path:
    path = directory / "routing.yaml"
    path.write_text(
        f"version: 1\nfacade: {{listen: '127.0.0.1:{facade_port}'}}\n"
        "backends:\n  monolith:\n    kind: monolith\n"
        f"    url: 'http://127.0.0.1:{monolith_port}'\n{MONOLITH_LOCAL}"
        "routes:\n  - {name: api, match: {paths: ['/api/*']}, targets: monolith}\n"
        "default: monolith\n"
    )
    return path


def sample_routing(directory: Path, ports: dict[int, int]) -> Path:
    """The repository's routing.yaml, with its local ports moved to free ones."""
    text = (REPO / "routing.yaml").read_text()
    for old, new in ports.items():
        text = text.replace(f"127.0.0.1:{old}", f"127.0.0.1:{new}")
    path = directory / "routing.yaml"
    path.write_text(text)
    return path


def test_stack_json_describes_what_up_runs(tmp_path: Path) -> None:
    routing = write_routing(tmp_path, 9001, 9000)
    result = CliRunner().invoke(cli, ["stack", "--json", "-f", str(routing)])
    assert result.exit_code == 0, result.output
    described = json.loads(result.output)
    assert described["front_door"] == "http://127.0.0.1:9000"
    assert described["cwd"] == str(tmp_path.resolve())
    assert [s["name"] for s in described["setup"]] == ["monolith migrate", "monolith seed"]
    monolith, facade = described["services"]
    assert monolith["health"] == "http://127.0.0.1:9001/healthz"
    assert "--bind 127.0.0.1:9001" in monolith["command"]
    assert monolith["command"].startswith(sys.executable)
    assert facade["health"] == "http://127.0.0.1:9901/__facade/health"  # the admin listener
    moved = CliRunner().invoke(cli, ["stack", "--json", "-f", str(routing), "--port", "9100"])
    assert json.loads(moved.output)["front_door"] == "http://127.0.0.1:9100"
    skipped = CliRunner().invoke(cli, ["stack", "--json", "-f", str(routing), "--no-setup"])
    assert json.loads(skipped.output)["setup"] == []


def test_the_sample_topology_runs_every_backend_with_the_aws_stand_in() -> None:
    result = CliRunner().invoke(cli, ["stack", "--json", "-f", str(REPO / "routing.yaml")])
    assert result.exit_code == 0, result.output
    described = json.loads(result.output)
    names = [s["name"] for s in described["services"]]
    assert names == [
        "aws", "monolith", "monolith-relay", "monolith-inbox", "catalog", "catalog-sync",
        "orders-relay", "orders-events", "facade",
    ]  # fmt: skip
    aws = described["services"][0]
    assert aws["health"] == "http://127.0.0.1:4566/__strangler/ready"
    assert "extracted.orders.store:create_local_table" in aws["command"]
    assert "facade.sync.queues:create_local_queues" in aws["command"]
    assert described["services"][2]["health"] is None  # workers have no health check
    assert "runs Lambda orders" in described["services"][-1]["role"]
    steps = [s["name"] for s in described["setup"]]
    assert steps == [
        "monolith migrate",
        "monolith seed",
        "monolith outbox_backfill",
        "catalog migrate",
        "catalog import_catalog",
    ]


def test_the_facade_and_the_monolith_cannot_share_a_port(tmp_path: Path) -> None:
    routing = write_routing(tmp_path, 9001, 9000)
    result = CliRunner().invoke(cli, ["stack", "-f", str(routing), "--port", "9001"])
    assert result.exit_code != 0
    assert "give each its own port" in str(result.exception)


def test_environment_references_are_filled_from_env_options(tmp_path: Path) -> None:
    routing = write_routing(tmp_path, 9001, 9000)
    result = CliRunner().invoke(
        cli, ["stack", "--json", "-f", str(routing), "-e", "SEED_PRODUCTS=7"]
    )
    seed = json.loads(result.output)["setup"][1]
    assert seed["command"].endswith("--products 7")
    default = CliRunner().invoke(cli, ["stack", "--json", "-f", str(routing)])
    assert json.loads(default.output)["setup"][1]["command"].endswith("--products 40")


def test_a_reference_without_a_value_or_default_is_a_configuration_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    routing = write_routing(tmp_path, 9001, 9000)
    routing.write_text(routing.read_text().replace("${SEED_PRODUCTS:-40}", "${NOT_SET_ANYWHERE}"))
    assert exit_code("stack", "-f", str(routing)) == 2
    err = capsys.readouterr().err
    assert "backends.monolith.local.setup[2]" in err
    assert "${NOT_SET_ANYWHERE} is not set" in err


@pytest.mark.parametrize(
    "argv",
    [["bogus"], ["stack", "--port", "70000"], ["up", "-e", "NO_EQUALS"], ["stack", "--nope"]],
)
def test_bad_usage_exits_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert exit_code(*argv) == 2
    assert "Error" in capsys.readouterr().err


def test_version_and_help_exit_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert exit_code("--version") == 0
    assert "strangler, version" in capsys.readouterr().out
    assert exit_code("--help") == 0


def test_up_fails_with_exit_1_naming_the_step_when_the_database_is_unreachable(
    tmp_path: Path,
) -> None:
    result = subprocess.run(
        [STRANGLER, "up", "-f", str(write_routing(tmp_path, free_port(), free_port())),
         "-e", "DATABASE_URL=postgres://postgres@127.0.0.1:5432/strangler_no_such_db"],
        capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "STRANGLER_VAR_DIR": str(tmp_path)},
    )  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    assert "set-up step 'monolith migrate' failed" in result.stderr
    assert "strangler_no_such_db" in result.stdout


def test_up_runs_the_whole_topology_and_ctrl_c_stops_everything(tmp_path: Path) -> None:
    port = free_port()
    routing = sample_routing(
        tmp_path,
        {
            8000: port,
            8001: free_port(),
            8002: free_port(),
            4566: free_port(),
            4567: free_port(),
            4568: free_port(),
            9901: (admin_port := free_port()),
        },
    )
    process = subprocess.Popen(
        [STRANGLER, "up", "-f", str(routing), "-e", "SEED_PRODUCTS=30", "-e", "SEED_CUSTOMERS=5",
         "-e", "SEED_ORDERS=10", "-e", "MONOLITH_WORKERS=1"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "STRANGLER_VAR_DIR": str(tmp_path), "DATABASE_URL": "",
             "CATALOG_DATABASE_URL": "", "STRANGLER_LAMBDA_CONCURRENCY": "2"},
    )  # fmt: skip
    output = LineReader(process)
    try:
        output.wait_for("the stack is up", timeout=120)
        pids = [int(p) for p in re.findall(r"started \(pid=(\d+)\)", output.text)]
        assert len(pids) == 9
        base = f"http://127.0.0.1:{port}"
        catalog = httpx.get(f"{base}/api/catalog/products/")
        assert catalog.headers["x-strangler-backend"] == "catalog"
        assert 0 < catalog.json()["count"] <= 30
        assert httpx.get(f"{base}/shop/").headers["x-strangler-backend"] == "monolith"
        token = json.loads(
            httpx.post(
                f"{base}/api/customers/token/",
                json={"email": "customer1@example.com", "password": "demo-password"},
            ).text
        )["token"]
        shifted = subprocess.run(
            [STRANGLER, "promote", "orders", "-f", str(routing)],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert shifted.returncode == 0, shifted.stderr
        deadline = time.monotonic() + 30
        admin = f"http://127.0.0.1:{admin_port}"
        while httpx.get(f"{admin}/__facade/health").json()["generation"] < 2:
            assert time.monotonic() < deadline, "the promoted table never went live"
            time.sleep(0.1)
        product = catalog.json()["results"][0]["id"]
        placed = httpx.post(
            f"{base}/api/orders/",
            json={"lines": [{"product": product, "quantity": 1}]},
            headers={"Authorization": f"Token {token}"},
            timeout=30,
        )
        assert placed.status_code == 201, placed.text
        assert placed.headers["x-strangler-backend"] == "orders"
        assert placed.json()["id"] >= ORDERS_ID_BASE + 1  # the function's own range
        # the Lambda reserved the stock in the monolith; the sync carries the new level
        # to the catalog service, which answers /api/catalog
        before = catalog.json()["results"][0]["stock"]
        deadline = time.monotonic() + 30
        while httpx.get(f"{base}/api/catalog/products/{product}/").json()["stock"] != before - 1:
            assert time.monotonic() < deadline, "the stock change never reached the catalog"
            time.sleep(0.1)
        assert (tmp_path / "monolith.sqlite3").exists()
        assert (tmp_path / "catalog.sqlite3").exists()
    finally:
        process.send_signal(signal.SIGINT)
        code = process.wait(timeout=60)
        output.finish()
    assert code == 0, output.text
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
