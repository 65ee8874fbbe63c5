"""The ``strangler`` CLI: exit codes, ``--json`` output, and ``up`` end to end."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from facade.cli import cli, main
from tests.facade.conftest import LineReader, free_port

STRANGLER = str(Path(sys.executable).with_name("strangler"))


def exit_code(*argv: str) -> int:
    with pytest.raises(SystemExit) as caught:
        main(list(argv))
    return int(caught.value.code or 0)


def write_routing(directory: Path, monolith_port: int, facade_port: int) -> Path:
    path = directory / "routing.yaml"
    path.write_text(
        f"version: 1\nfacade: {{listen: '127.0.0.1:{facade_port}'}}\n"
        f"backends:\n  monolith: {{kind: monolith, url: 'http://127.0.0.1:{monolith_port}'}}\n"
        "routes:\n  - {name: api, match: {paths: ['/api/*']}, targets: monolith}\n"
        "default: monolith\n"
    )
    return path


def test_stack_json_describes_what_up_runs(tmp_path: Path) -> None:
    routing = write_routing(tmp_path, 9001, 9000)
    result = CliRunner().invoke(cli, ["stack", "--json", "-f", str(routing), "--no-seed"])
    assert result.exit_code == 0, result.output
    described = json.loads(result.output)
    assert described["front_door"] == "http://127.0.0.1:9000"
    assert [s["name"] for s in described["setup"]] == ["migrate"]
    monolith, facade = described["services"]
    assert monolith["health"] == "http://127.0.0.1:9001/healthz"
    assert "--bind 127.0.0.1:9001" in monolith["command"]
    assert facade["health"] == "http://127.0.0.1:9000/__facade/health"
    moved = CliRunner().invoke(cli, ["stack", "--json", "-f", str(routing), "--port", "9100"])
    assert json.loads(moved.output)["front_door"] == "http://127.0.0.1:9100"


def test_the_facade_and_the_monolith_cannot_share_a_port(tmp_path: Path) -> None:
    routing = write_routing(tmp_path, 9001, 9000)
    result = CliRunner().invoke(cli, ["stack", "-f", str(routing), "--port", "9001"])
    assert result.exit_code != 0
    assert "give the facade" in str(result.exception)


def test_stack_seed_sizes_reach_the_seed_command() -> None:
    result = CliRunner().invoke(cli, ["stack", "--json", "--products", "7", "--random-seed", "9"])
    seed = json.loads(result.output)["setup"][1]
    assert "--products 7" in seed["command"]
    assert "--seed 9" in seed["command"]


@pytest.mark.parametrize(
    "argv",
    [["bogus"], ["stack", "--port", "70000"], ["up", "--workers", "0"], ["stack", "--nope"]],
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
         "--database-url", "postgres://postgres@127.0.0.1:5432/strangler_no_such_db"],
        capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "STRANGLER_VAR_DIR": str(tmp_path)},
    )  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    assert "set-up step 'migrate' failed" in result.stderr
    assert "strangler_no_such_db" in result.stdout


def test_up_serves_the_seeded_shop_and_ctrl_c_stops_everything(tmp_path: Path) -> None:
    port = free_port()
    routing = write_routing(tmp_path, free_port(), port)
    process = subprocess.Popen(
        [STRANGLER, "up", "-f", str(routing), "--products", "30", "--customers", "5",
         "--orders", "10"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "STRANGLER_VAR_DIR": str(tmp_path), "DATABASE_URL": ""},
    )  # fmt: skip
    output = LineReader(process)
    try:
        listening = output.wait_for("Listening at:", timeout=120)
        output.wait_for("the stack is up", timeout=60)
        master_pid = int(re.search(r"\((\d+)\)", listening).group(1))  # type: ignore[union-attr]
        base = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{base}/healthz").json()["status"] == "ok"
        through_facade = httpx.get(f"{base}/api/catalog/products/")
        assert through_facade.headers["x-strangler-backend"] == "monolith"
        assert through_facade.headers["x-strangler-route"] == "api"
        assert 0 < through_facade.json()["count"] <= 30
        assert (tmp_path / "monolith.sqlite3").exists()
    finally:
        process.send_signal(signal.SIGINT)
        code = process.wait(timeout=60)
        output.finish()
    assert code == 0, output.text
    with pytest.raises(ProcessLookupError):
        os.kill(master_pid, 0)
