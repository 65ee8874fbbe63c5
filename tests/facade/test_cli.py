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


def test_stack_json_describes_what_up_runs() -> None:
    result = CliRunner().invoke(cli, ["stack", "--json", "--port", "8123", "--no-seed"])
    assert result.exit_code == 0, result.output
    described = json.loads(result.output)
    assert described["front_door"] == "http://127.0.0.1:8123"
    assert [s["name"] for s in described["setup"]] == ["migrate"]
    [monolith] = described["services"]
    assert monolith["health"] == "http://127.0.0.1:8123/healthz"
    assert "--bind 127.0.0.1:8123" in monolith["command"]


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
        [STRANGLER, "up", "--port", str(free_port()), "--database-url",
         "postgres://postgres@127.0.0.1:5432/strangler_no_such_db"],
        capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "STRANGLER_VAR_DIR": str(tmp_path)},
    )  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    assert "set-up step 'migrate' failed" in result.stderr
    assert "strangler_no_such_db" in result.stdout


def test_up_serves_the_seeded_shop_and_ctrl_c_stops_everything(tmp_path: Path) -> None:
    port = free_port()
    process = subprocess.Popen(
        [STRANGLER, "up", "--port", str(port), "--products", "30", "--customers", "5",
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
        products = httpx.get(f"{base}/api/catalog/products/").json()
        assert 0 < products["count"] <= 30
        assert (tmp_path / "monolith.sqlite3").exists()
    finally:
        process.send_signal(signal.SIGINT)
        code = process.wait(timeout=60)
        output.finish()
    assert code == 0, output.text
    with pytest.raises(ProcessLookupError):
        os.kill(master_pid, 0)
