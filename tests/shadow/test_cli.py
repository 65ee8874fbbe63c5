"""``strangler shadow report|clear``: the store read back for people and for tools."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from facade.cli import cli, main
from facade.shadow.store import NOISE, SHADOW, Comparison, Example, Writer

ROUTING = """\
version: 1
backends:
  monolith: {kind: monolith, url: "http://127.0.0.1:8001"}
  orders: {kind: ecs, url: "http://127.0.0.1:8002"}
routes:
  - name: orders
    match: {paths: ["/api/orders/*"]}
    targets: {monolith: 100}
    shadow: {to: orders, store: var/s.sqlite3}
"""


@pytest.fixture
def routing(tmp_path: Path) -> Path:
    file = tmp_path / "routing.yaml"
    file.write_text(ROUTING)
    point = "GET /api/orders/{id}/"
    example = Example(
        "$.total", "$.total", "GET /api/orders/4/", [("accept", "application/json")], '"40.00"',
        '"40.01"',
    )  # fmt: skip
    rows = [Comparison("orders", point, NOISE, ("$.at",))] * 5
    rows += [Comparison("orders", point, SHADOW, ("$.at",))] * 3
    rows += [Comparison("orders", point, SHADOW, ("$.at", "$.total"), (example,))]
    writer = Writer(tmp_path / "var" / "s.sqlite3", {})
    writer.write(rows, {("orders", "dropped:concurrency"): 2})
    writer.close()
    return file


def test_the_json_report_has_the_figures_fields_and_examples(routing: Path) -> None:
    result = CliRunner().invoke(cli, ["shadow", "report", "orders", "--json", "-f", str(routing)])
    assert result.exit_code == 0, result.output
    found = json.loads(result.output)
    assert (found["compared"], found["differing"], found["matched"]) == (4, 1, 0)
    assert (found["dropped"], found["errors"]) == (2, 0)
    (endpoint,) = found["endpoints"]
    verdicts = {f["field"]: f["verdict"] for f in endpoint["fields"]}
    assert verdicts == {"$.total": "differs", "$.at": "noise"}
    total = next(f for f in endpoint["fields"] if f["field"] == "$.total")
    assert total["examples"][0]["request"] == "GET /api/orders/4/"
    assert (total["difference_rate"], total["noise_rate"]) == (0.25, 0.0)


def test_the_text_report_shows_real_differences_with_an_example(routing: Path) -> None:
    result = CliRunner().invoke(cli, ["shadow", "report", "orders", "-f", str(routing)])
    assert result.exit_code == 0, result.output
    assert "4 compared, 0 matched, 1 differing (25.00 %, noise removed), 2 dropped" in result.output
    assert "$.total" in result.output
    assert "DIFFERS" in result.output
    assert 'primary: "40.00"' in result.output


def test_clear_forgets_the_route_and_an_unknown_route_is_a_usage_error(routing: Path) -> None:
    result = CliRunner().invoke(cli, ["shadow", "clear", "orders", "-f", str(routing)])
    assert result.exit_code == 0
    assert "orders: 9 comparisons cleared" in result.output
    with pytest.raises(SystemExit) as caught:
        main(["shadow", "report", "ordres", "-f", str(routing)])
    assert caught.value.code == 2
    result = CliRunner().invoke(cli, ["shadow", "report", "orders", "--json", "-f", str(routing)])
    assert json.loads(result.output)["compared"] == 0
