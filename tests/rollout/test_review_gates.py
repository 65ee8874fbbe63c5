"""Adversarial review of the data gates: what they count from, and what a hung side
does to the controller."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

import facade.rollout.gates as gates_module
import facade.sync.commands as sync_commands
from facade.rollout.controller import EXIT_PROMOTED
from facade.rollout.gates import SyncGateCheck, route_gates, verifier
from facade.rollout.samples import Result
from facade.routing.loader import load_table
from tests.rollout.controller_kit import ROUTING, Provider, audit, make, share

GATES = (
    "      on_inconclusive: %(on)s\n"
    "      gates:\n"
    "        sync: {max_lag: 30, dead_letters: 0, max_conflict_rate: 5, verify_sample: 50}\n"
)
SYNC = """\
sync:
  orders-sync:
    from: monolith
    to: orders
    queue: shop-orders.fifo
    commands:
      outbox_status: "{python} -c pass"
      source_digest: "{python} -c pass"
      target_digest: "{python} -c pass"
"""


def _routing(directory: Path) -> Path:
    text = ROUTING.replace("      on_inconclusive: %(on)s\n", GATES)
    path = directory / "routing.yaml"
    path.write_text(text % {"on": "pause", "min_time": 30, "bake": 60, "watch": 0} + SYNC)
    return path


def test_dead_letters_during_the_first_step_hold_the_gate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The gate's counters "since the start" are read at the gate's *first check* — when
    the first step is already about to pass — not when the rollout starts. Dead letters
    (and conflicts) that pile up during the first step become the origin and are never
    counted: 3 orders dead-lettered at 1 % and the rollout walks on to 100 %."""
    routing = _routing(tmp_path)
    provider = Provider(routing)

    def figures(table: Any, path: Any, use_aws: bool) -> Any:
        def read(names: list[str]) -> dict[str, dict[str, Any]]:
            # at the rollout's start: no dead letter; from the 2nd reading at 1 %: three
            dead = 3 if provider.reads >= 2 else 0
            return {
                name: {
                    "dead_letters": dead,
                    "conflicts": 0,
                    "outbox_published": 100 * provider.reads,
                    "outbox_oldest_pending_age_s": 0.0,
                }
                for name in names
            }

        return read

    monkeypatch.setattr(gates_module, "status_figures", figures)
    monkeypatch.setattr(gates_module, "verifier", lambda table, path: lambda n, s, t: [])
    table = load_table(routing)
    plan = table.route("orders").rollout
    assert plan is not None
    controller, _, _ = make(
        tmp_path, provider=provider, gates=route_gates(table, routing, plan, False)
    )
    result = controller.run()
    shifted = [e["after"]["orders"] for e in audit(tmp_path) if e.get("action") == "shift"]
    assert result != EXIT_PROMOTED, f"promoted over 3 new dead letters: weights {shifted}"
    assert share(tmp_path) == 1


class Hung(BaseException):
    """The digest command never returns (a locked table, a stuck Lambda stand-in)."""


def test_a_hung_digest_command_is_a_provider_error_not_a_hung_controller(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The gate runs the streams' digest (and status) commands with `subprocess.run` and
    no timeout. A side that hangs hangs the controller inside the gate: no analysis, no
    critical guard, and no command read — an `abort` from another terminal waits its 120 s
    and gives up. Here `subprocess.run` stands for a command that never ends unless a
    timeout is given."""

    def run(*args: Any, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        if kwargs.get("timeout") is None:
            raise Hung("subprocess.run without a timeout: this call never returns")
        raise subprocess.TimeoutExpired(args[0], kwargs["timeout"])

    monkeypatch.setattr(subprocess, "run", run)  # the module sync.commands calls
    routing = _routing(tmp_path)
    table = load_table(routing)
    plan = table.route("orders").rollout
    assert plan is not None
    assert plan.gates.sync is not None
    healthy = {
        "orders-sync": {
            "dead_letters": 0,
            "conflicts": 0,
            "outbox_published": 10,
            "outbox_oldest_pending_age_s": 0.0,
        }
    }
    check = SyncGateCheck(plan.gates.sync, lambda names: healthy, verifier(table, routing))
    try:
        verdicts = check.check(check.start())
    except Hung as exc:
        pytest.fail(f"the gate would block the controller for ever: {exc}")
    assert [v.result for v in verdicts] == [Result.PROVIDER_ERROR]


class _LambdaStore:
    """What `extracted.orders.sync status` reads: nothing waiting, nothing parked."""

    def waiting(self, limit: int = 1000) -> list[dict[str, Any]]:
        return []

    def parked(self) -> list[dict[str, Any]]:
        return []

    def conflicts(self, stream: str) -> int:
        return 0


def test_the_samples_reverse_stream_does_not_close_the_gate_on_one_conflict(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The sample's default gate (`max_conflict_rate: 5`) divides the conflicts met since
    the start by `outbox_published` of the stream's source. On `orders-to-monolith` the
    source is the Lambda, whose `status --json` reports pending, age and parked but no
    `published`: the denominator is 0, and the gate's own rule turns *one* conflict into
    "100 %". The two-way orders stream is designed to meet conflicts (the lifecycle rule
    settles them), so the sample's rollout is held at its step after its first one and
    pauses at max_wait — however many thousand changes went through cleanly."""
    import facade.sync.cli as sync_cli
    from extracted.orders import sync as lambda_sync

    sample = Path(__file__).resolve().parents[2] / "routing.yaml"
    table = load_table(sample)
    plan = table.route("orders").rollout
    assert plan is not None
    assert plan.gates.sync is not None
    assert "orders-to-monolith" in plan.gates.sync.streams
    conflicts = {"now": 0}

    def run_json(
        table_: Any, routing: Any, stream: Any, key: str, args: list[str], **kw: Any
    ) -> Any:
        if key == "outbox_status":  # the Lambda's side of orders-to-monolith
            return 0, lambda_sync.status(_LambdaStore())  # type: ignore[arg-type]
        # the monolith's `sync_status --json`, inbox part, as its command prints it
        return 0, {"streams": {}, "inbox": {stream.name: {"conflicts": conflicts["now"]}}}

    monkeypatch.setattr(sync_commands, "run_json", run_json)
    monkeypatch.setattr(
        sync_cli, "_depths", lambda client, stream: {"queued": 0, "in_flight": 0, "dead_letters": 0}
    )

    def figures(names: list[str]) -> dict[str, dict[str, Any]]:
        return sync_cli.gather(table, sample, None, [table.stream(n) for n in names])

    gate = type(plan.gates.sync)(
        streams=("orders-to-monolith",),
        max_lag=plan.gates.sync.max_lag,
        dead_letters=plan.gates.sync.dead_letters,
        max_conflict_rate=plan.gates.sync.max_conflict_rate,
        verify_sample=0,
    )
    check = SyncGateCheck(gate, figures, None)
    origin = check.start()
    conflicts["now"] = 1  # one settled conflict among the thousands of changes since
    [verdict] = check.check(origin)
    assert verdict.result is Result.PASS, verdict.reason
