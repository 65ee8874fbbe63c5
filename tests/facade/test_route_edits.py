"""shift / promote / rollback: round-trip edits of routing.yaml, with an audit trail."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from facade.cli import cli
from facade.exceptions import ConfigError
from facade.routing.edit import apply_edit
from facade.routing.loader import load_table

ROUTING = """\
# The route table.
version: 1
facade:
  audit_log: audit.jsonl
backends:
  monolith: {kind: monolith, url: "http://127.0.0.1:8001"}   # the legacy app
  orders: {kind: ecs, url: "http://127.0.0.1:8002"}
  orders-v2: {kind: ecs, url: "http://127.0.0.1:8003"}
routes:
  # Orders move to the new service.
  - name: orders
    match: {paths: ["/api/orders/*"]}
    targets: {monolith: 90, orders: 10}   # canary
  - name: catalog
    match:
      paths: ["/api/catalog/*"]
    targets: monolith
default: monolith
"""


@pytest.fixture
def routing(tmp_path: Path) -> Path:
    path = tmp_path / "routing.yaml"
    path.write_text(ROUTING)
    return path


def shares(path: Path, route: str) -> dict[str, float]:
    return {t.backend: t.percent for t in load_table(path).route(route).targets}


def test_shift_changes_only_the_weights_and_keeps_comments_and_layout(routing: Path) -> None:
    change = apply_edit(routing, "shift", "orders", backend="orders", percent=25)
    assert change.before == {"monolith": 90.0, "orders": 10.0}
    assert change.after == {"monolith": 75.0, "orders": 25.0}
    expected = ROUTING.replace("{monolith: 90, orders: 10}", "{monolith: 75, orders: 25}")
    assert routing.read_text() == expected


def test_every_edit_is_audited(routing: Path) -> None:
    apply_edit(routing, "shift", "orders", backend="orders", percent=50, who="alice")
    apply_edit(routing, "rollback", "orders", who="bob")
    lines = [json.loads(line) for line in (routing.parent / "audit.jsonl").read_text().splitlines()]
    assert [(e["who"], e["action"], e["route"]) for e in lines] == [
        ("alice", "shift", "orders"),
        ("bob", "rollback", "orders"),
    ]
    assert lines[0]["before"] == {"monolith": 90.0, "orders": 10.0}
    assert lines[0]["after"] == {"monolith": 50.0, "orders": 50.0}
    assert lines[1]["after"] == {"monolith": 100.0, "orders": 0.0}
    assert lines[0]["at"].endswith("+00:00")


def test_promote_then_rollback(routing: Path) -> None:
    apply_edit(routing, "promote", "orders")
    assert shares(routing, "orders") == {"monolith": 0.0, "orders": 100.0}
    apply_edit(routing, "rollback", "orders")
    assert shares(routing, "orders") == {"monolith": 100.0, "orders": 0.0}


def test_shift_adds_a_backend_and_splits_the_rest_proportionally(routing: Path) -> None:
    apply_edit(routing, "shift", "orders", backend="orders-v2", percent=10)
    assert shares(routing, "orders") == {"monolith": 81.0, "orders": 9.0, "orders-v2": 10.0}


def test_shift_of_a_shorthand_route_grows_a_mapping(routing: Path) -> None:
    apply_edit(routing, "shift", "catalog", backend="orders", percent=0.5)
    assert shares(routing, "catalog") == {"monolith": 99.5, "orders": 0.5}
    assert "targets: {monolith: 99.5, orders: 0.5}" in routing.read_text()


def test_an_edit_that_would_be_invalid_is_refused_and_nothing_is_written(routing: Path) -> None:
    before = routing.read_text()
    with pytest.raises(ConfigError, match="no backend named 'billing'"):
        apply_edit(routing, "shift", "orders", backend="billing", percent=10)
    with pytest.raises(ConfigError, match="no route named 'nope'"):
        apply_edit(routing, "rollback", "nope")
    with pytest.raises(ConfigError, match=r"steps of 0\.1"):
        apply_edit(routing, "shift", "orders", backend="orders", percent=12.34)
    assert routing.read_text() == before
    assert not (routing.parent / "audit.jsonl").exists()


def test_a_no_op_edit_writes_nothing(routing: Path) -> None:
    change = apply_edit(routing, "shift", "orders", backend="orders", percent=10)
    assert not change.changed
    assert not (routing.parent / "audit.jsonl").exists()


def test_cli_shift_promote_rollback(routing: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(
        cli, ["shift", "orders", "--to", "orders", "--percent", "30", "-f", str(routing)]
    )
    assert result.exit_code == 0, result.output
    assert "shift orders: monolith 90% → 70%, orders 10% → 30%" in result.output
    result = runner.invoke(cli, ["promote", "orders", "-f", str(routing), "--json"])
    assert json.loads(result.output)["after"] == {"monolith": 0.0, "orders": 100.0}
    result = runner.invoke(cli, ["rollback", "orders", "-f", str(routing)])
    assert result.exit_code == 0
    assert shares(routing, "orders") == {"monolith": 100.0, "orders": 0.0}


def test_cli_validate_and_explain(routing: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["validate", str(routing)])
    assert result.exit_code == 0
    assert "valid · 3 backends · 2 routes + default · split: orders" in result.output
    result = runner.invoke(
        cli, ["explain", "GET", "/api/orders/1?x=1", "-f", str(routing), "--json"]
    )
    decision = json.loads(result.output)
    assert decision["route"] == "orders"
    assert decision["targets"] == [
        {"backend": "monolith", "percent": 90.0},
        {"backend": "orders", "percent": 10.0},
    ]
    bad = tmp_path / "bad.yaml"
    bad.write_text(ROUTING.replace("orders: 10}", "orders: 20}"))
    result = runner.invoke(cli, ["validate", str(bad), "--json"])
    assert result.exit_code == 2
    [problem] = json.loads(result.output)["problems"]
    assert (problem["line"], problem["key"]) == (13, "routes[0] (orders).targets")
    assert "add up to 110" in problem["message"]


def test_the_sample_routing_file_round_trips_through_edits(tmp_path: Path) -> None:
    sample = Path(__file__).resolve().parents[2] / "routing.yaml"
    copy = tmp_path / "routing.yaml"
    copy.write_text(sample.read_text())
    before = load_table(copy).route("orders")
    original = before.share_of("orders") / 10
    for percent in ("50", f"{original:g}"):
        result = CliRunner().invoke(
            cli, ["shift", "orders", "--to", "orders", "--percent", percent, "-f", str(copy)]
        )
        assert result.exit_code == 0, result.output
        assert load_table(copy).route("orders").share_of("orders") == round(float(percent) * 10)
    assert copy.read_text() == sample.read_text()


def test_a_deny_rule_cannot_be_shifted(tmp_path: Path) -> None:
    path = tmp_path / "routing.yaml"
    path.write_text(
        "version: 1\nbackends:\n  monolith: {kind: monolith, url: 'http://127.0.0.1:9'}\n"
        "routes:\n  - name: internal\n    match: {paths: ['/internal/*']}\n"
        "    fixed_response: {status: 404}\ndefault: monolith\n"
    )
    before = path.read_text()
    with pytest.raises(ConfigError, match="answers a fixed response"):
        apply_edit(path, "shift", "internal", backend="monolith", percent=10)
    assert path.read_text() == before
