"""The rollout controller on a function's versions, in milliseconds: a scripted analysis
and clock (``controller_kit``) on a real routing file, state store and audit log. A
passing canary is promoted by moving the alias; a promotion AWS refuses pauses with
nothing changed; a controller killed after the promotion and before recording it finds
the file promoted on restart; nothing is canaried once from and to are the same."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest
from click.testing import CliRunner

from facade.cli import cli
from facade.exceptions import AwsError, ConfigError
from facade.rollout.controller import EXIT_PAUSED, EXIT_PROMOTED
from facade.rollout.engine import Phase
from facade.rollout.function_canary import CanaryController, VersionMover
from facade.rollout.plan import canary_key
from facade.rollout.samples import ArmCounts, Result
from facade.rollout.state import RolloutStore
from facade.routing.edit import edit_canary
from facade.routing.loader import load_table
from tests.rollout.controller_kit import Clock, ScriptedAnalyzer, always, audit

ROUTING = """\
version: 1
facade:
  audit_log: audit.jsonl
backends:
  monolith: {kind: monolith, url: "http://127.0.0.1:8001"}
  orders:
    kind: lambda
    handler: app:handler
    aws: {function: shop-orders, alias: live}
    canary:
      from: "1"
      to: "2"
      weight: 0
      local: {"1": "app:handler", "2": "app:handler"}
      steps: [10, 50, 100]
      step: {min_time: 30, min_sample: 10, max_wait: 300}
      bake: 60
routes:
  - {name: orders, match: {paths: ["/api/orders/*"]}, targets: {orders: 100}}
default: monolith
"""


@dataclass
class Versions:
    """Cumulative invocations per version, split by the block's weight in the file."""

    routing: Path
    baseline: int = 0
    canary: int = 0
    name: str = "scripted"

    def read(self, route: str, baseline: str, canary: str) -> tuple[ArmCounts, ArmCounts]:
        assert route == "orders@canary"
        block = load_table(self.routing).backends["orders"].canary
        assert block is not None
        self.canary += 100 * block.share // 1000
        self.baseline += 100 - 100 * block.share // 1000
        return ArmCounts(self.baseline, 0), ArmCounts(self.canary, 0)


@dataclass
class Traffic:
    """The AWS side of a move, recorded; ``refuse_promote`` makes AWS refuse promotion."""

    refuse_promote: bool = False
    calls: list[str] = field(default_factory=list)

    def set(self, share: int) -> float:
        self.calls.append(f"set {share}")
        return share / 10

    def promote(self) -> float:
        if self.refuse_promote:
            raise AwsError("update_alias: ServiceException: try again")
        self.calls.append("promote")
        return 100.0

    def snapshot(self) -> object:
        return len(self.calls)

    def restore(self, before: object) -> None:
        self.calls.append(f"restore {before}")


def controller(tmp_path: Path, traffic: Traffic | None = None) -> CanaryController:
    routing = tmp_path / "routing.yaml"
    if not routing.exists():
        routing.write_text(ROUTING)
    clock = Clock()
    return CanaryController(
        routing,
        canary_key("orders"),
        RolloutStore(tmp_path / "state", canary_key("orders")),
        Versions(routing),
        analyzer_factory=lambda settings, saved: ScriptedAnalyzer(always(Result.PASS), saved),
        clock=clock,
        sleep=clock.sleep,
        say=lambda line: None,
        mover=VersionMover(routing, "orders", traffic),
    )


def block(tmp_path: Path) -> tuple[str, str, int]:
    found = load_table(tmp_path / "routing.yaml").backends["orders"].canary
    assert found is not None
    return found.baseline, found.canary, found.share


def test_a_passing_version_is_promoted_by_moving_the_alias(tmp_path: Path) -> None:
    traffic = Traffic()
    assert controller(tmp_path, traffic).run() == EXIT_PROMOTED
    assert traffic.calls == ["set 100", "set 500", "set 1000", "promote"]
    assert block(tmp_path) == ("2", "2", 0)
    actions = [e["action"] for e in audit(tmp_path) if not e["action"].endswith("analysis")]
    assert actions[-3:] == ["canary.promote", "rollout.moved", "rollout.promoted"]
    assert [e["after"]["2"] for e in audit(tmp_path) if e["action"] == "canary"] == [10, 50, 100]


def test_a_promotion_aws_refuses_pauses_with_the_alias_and_file_as_they_were(
    tmp_path: Path,
) -> None:
    traffic = Traffic(refuse_promote=True)
    assert controller(tmp_path, traffic).run() == EXIT_PAUSED
    assert traffic.calls[-1] == "restore 3"  # put back as read before the promotion
    assert block(tmp_path) == ("1", "2", 1000)
    state = RolloutStore(tmp_path / "state", "orders@canary").load()
    assert state is not None
    assert state.phase is Phase.PAUSED
    assert "could not promote 2" in (state.paused_reason or "")


def test_a_controller_killed_after_promoting_finds_the_file_promoted(tmp_path: Path) -> None:
    first = controller(tmp_path)
    state = first.begin()
    state.phase, state.step, state.configured = Phase.BAKING, 2, 1000
    first.store.save(state)
    edit_canary(tmp_path / "routing.yaml", "orders", 0, promote=True, who="killed")
    again = controller(tmp_path, Traffic())
    assert again.run() == EXIT_PROMOTED
    saved = again.store.load()
    assert saved is not None
    assert saved.phase is Phase.PROMOTED
    assert "promoted before a restart" in saved.reason


def test_nothing_is_canaried_once_from_and_to_are_the_same(tmp_path: Path) -> None:
    routing = tmp_path / "routing.yaml"
    routing.write_text(ROUTING.replace('to: "2"', 'to: "1"'))
    with pytest.raises(ConfigError, match="nothing to canary"):
        controller(tmp_path).run()


def test_its_state_never_shares_a_file_with_the_routes_rollout(tmp_path: Path) -> None:
    canary = controller(tmp_path)
    canary.run()
    assert (tmp_path / "state" / "orders@canary.json").exists()
    assert not (tmp_path / "state" / "orders.json").exists()


def test_status_shows_a_canary_under_canary_and_never_among_route_rollouts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    controller(tmp_path, Traffic()).run()
    monkeypatch.setenv("STRANGLER_ROLLOUT_DIR", str(tmp_path / "state"))
    routing = str(tmp_path / "routing.yaml")
    shown = CliRunner().invoke(cli, ["canary", "status", "--routing", routing])
    assert shown.exit_code == 0, shown.output
    assert shown.output.startswith("orders@canary: promoted · step 3/3 (10 → 50 → 100 %) · 1 → 2")
    assert "configured 2 100 %" in shown.output
    routes = CliRunner().invoke(cli, ["rollout", "status", "--routing", routing])
    assert routes.output == "no rollouts\n"
    missing = CliRunner().invoke(cli, ["canary", "status", "monolith", "--routing", routing])
    assert isinstance(missing.exception, ConfigError)  # exit 2 through strangler's handler
    assert "has no canary" in str(missing.exception)
