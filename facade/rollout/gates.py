"""The data gates: before the canary's weight goes up, the data both sides write must be
healthy — the checks no traffic-only canary tool makes.

For each stream the plan watches (by default every stream the new backend is a side of):

* **lag**: the oldest change waiting in the source's outbox is younger than ``max_lag``;
* **dead letters**: no more new messages in the dead-letter queue than allowed, counted
  from the rollout's start;
* **conflicts**: conflicts met on the applying side since the start, as a percentage of
  the changes the source published since the start, stay under ``max_conflict_rate``;
* **verify**: ``sync verify`` of the stream finds no drift that stays. Two sides being
  written while they are compared differ for a moment on the changes in flight, so the
  ids that differ (at most ``verify_sample`` of them) are compared again after a pause
  (up to ``max_lag``): only an id that still differs while its source side did not change
  in between is drift.

Each gate is a ``Verdict`` (metric ``sync``): *pass* opens it, *inconclusive* holds the
step (with the reason), *provider error* when a figure cannot be read.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from facade.exceptions import StranglerError
from facade.rollout.engine import RolloutState
from facade.rollout.plan import RolloutPlan, ShadowGate, SyncGate
from facade.rollout.samples import Result, Verdict
from facade.routing.model import RoutingTable

# stream name → its figures (sync status: dead_letters, conflicts, outbox_published, ...)
Figures = Callable[[list[str]], dict[str, dict[str, Any]]]
# (stream, ids or None) → {entity label: {id: digest}} per side, or drift report
Verify = Callable[[str], dict[str, Any]]


COMMAND_TIMEOUT = 60.0  # seconds a side's status or digest command may take


def status_figures(table: RoutingTable, routing: Path, use_aws: bool) -> Figures:
    """``strangler sync status``'s figures, through the same commands and queues."""
    from facade.sync.cli import gather, sqs_client

    def read(names: list[str]) -> dict[str, dict[str, Any]]:
        client = sqs_client(table, use_aws)
        return gather(
            table, routing, client, [table.stream(n) for n in names], timeout=COMMAND_TIMEOUT
        )

    return read


def verifier(table: RoutingTable, routing: Path) -> Callable[[str, int, float], list[str]]:
    """``(stream, sample, settle) → ids`` that still differ after ``settle`` seconds."""
    from facade.sync import commands
    from facade.sync import verify as checking

    def verify(name: str, sample: int, settle: float) -> list[str]:
        stream = table.stream(name)

        def ask(side: str, args: list[str]) -> Any:
            key = f"{side}_digest"
            code, answer = commands.run_json(
                table, routing, stream, key, args, timeout=COMMAND_TIMEOUT
            )
            if code:
                raise StranglerError(f"sync.{name}.commands.{key} failed (exit {code})")
            return answer

        first = checking.verify(ask, name)
        suspects = {
            label: figures["drifted"][:sample]
            for label, figures in first["entities"].items()
            if figures["drifted"]
        }
        if not suspects:
            return []
        before = _digests(ask, name, suspects)
        time.sleep(settle)
        after = _digests(ask, name, suspects)
        lasting: list[str] = []
        for label, ids in suspects.items():
            for entity_id in ids:
                key = (label, entity_id)
                source_then, _ = before.get(key, (None, None))
                source_now, target_now = after.get(key, (None, None))
                if source_then == source_now and source_now != target_now:
                    lasting.append(f"{label}:{entity_id}")
        return lasting

    return verify


def _digests(
    ask: Callable[[str, list[str]], Any], stream: str, suspects: dict[str, list[str]]
) -> dict[tuple[str, str], tuple[Any, Any]]:
    """(source digest, target digest) of each suspect id, read through the digest
    commands' bucket filter (the ids' own buckets)."""
    from facade.sync.digest import bucket_of

    found: dict[tuple[str, str], tuple[Any, Any]] = {}
    for label, ids in suspects.items():
        buckets = sorted({str(bucket_of(i, 1024)) for i in ids})
        args = ["--stream", stream, "--entity", label, "--buckets", "1024", "--only"]
        here = ask("source", [*args, ",".join(buckets)])["digests"]
        there = ask("target", [*args, ",".join(buckets)])["digests"]
        for entity_id in ids:
            found[(label, entity_id)] = (here.get(entity_id), there.get(entity_id))
    return found


class SyncGateCheck:
    """The sync gate of one rollout; ``start`` keeps the counters to compare against."""

    def __init__(
        self,
        gate: SyncGate,
        figures: Figures,
        verify: Callable[[str, int, float], list[str]] | None,
    ) -> None:
        self.gate = gate
        self.figures = figures
        self.verify = verify

    def start(self) -> dict[str, dict[str, float]]:
        """The counters at the rollout's start (kept in its state)."""
        read = self.figures(list(self.gate.streams))
        return {
            name: {
                "dead_letters": float(f.get("dead_letters", 0)),
                "conflicts": float(f.get("conflicts", 0)),
                "published": float(f.get("outbox_published", 0)),
            }
            for name, f in read.items()
        }

    def check(self, origin: dict[str, dict[str, float]]) -> list[Verdict]:
        gate = self.gate
        try:
            read = self.figures(list(gate.streams))
        except Exception as exc:  # boto3/SQS, the status commands: failures of any kind
            return [Verdict("sync", Result.PROVIDER_ERROR, f"sync status unavailable: {exc}")]
        verdicts: list[Verdict] = []
        for name in gate.streams:
            figures = read.get(name, {})
            start = origin.get(name, {})
            problems: list[str] = []
            lag = float(figures.get("outbox_oldest_pending_age_s", 0.0))
            if lag > gate.max_lag:
                problems.append(f"lag {lag:.1f}s over {gate.max_lag:g}s")
            dead = int(figures.get("dead_letters", 0) - start.get("dead_letters", 0))
            if dead > gate.dead_letters:
                problems.append(f"{dead} new dead letters (allowed {gate.dead_letters})")
            conflicts = float(figures.get("conflicts", 0)) - start.get("conflicts", 0.0)
            known = "outbox_published" in figures  # the source counts what it published
            published = float(figures.get("outbox_published", 0)) - start.get("published", 0.0)
            rate = 100.0 * conflicts / published if published > 0 else 0.0
            if known and conflicts > 0 and published <= 0:
                rate = 100.0
            if rate > gate.max_conflict_rate:
                problems.append(
                    f"conflict rate {rate:.1f} % ({conflicts:.0f} of {published:.0f} changes) "
                    f"over {gate.max_conflict_rate:g} %"
                )
            conflict_text = (
                f"conflict rate {rate:.1f} %"
                if known
                else f"{conflicts:.0f} conflicts (rate unknown: the source counts no "
                "published changes)"
            )
            drifted: list[str] = []
            if not problems and gate.verify_sample and self.verify is not None:
                try:
                    drifted = self.verify(name, gate.verify_sample, min(gate.max_lag, 10.0))
                except (StranglerError, OSError, ValueError, KeyError) as exc:
                    verdicts.append(
                        Verdict("sync", Result.PROVIDER_ERROR, f"{name}: verify failed: {exc}")
                    )
                    continue
                if drifted:
                    problems.append(
                        f"{len(drifted)} entities drifted: {', '.join(drifted[:5])}"
                        + (" …" if len(drifted) > 5 else "")
                    )
            details = {
                "stream": name,
                "lag_s": lag,
                "new_dead_letters": dead,
                "conflicts": conflicts,
                "published": published,
                "drifted": drifted[:20],
            }
            if problems:
                verdicts.append(
                    Verdict(
                        "sync",
                        Result.INCONCLUSIVE,
                        f"{name}: " + "; ".join(problems),
                        details=details,
                    )
                )
            else:
                verdicts.append(
                    Verdict(
                        "sync",
                        Result.PASS,
                        f"{name}: lag {lag:.1f}s, {dead} new dead "
                        f"letters, {conflict_text}, no drift",
                        details=details,
                    )
                )
        return verdicts


class RouteGates:
    """The plan's gates for the controller: ``start`` keeps the counters of the rollout's
    start in its state; calling it checks every gate."""

    def __init__(self, table: RoutingTable, routing: Path, plan: RolloutPlan, use_aws: bool):
        self.routing = routing
        self.sync = (
            SyncGateCheck(
                plan.gates.sync, status_figures(table, routing, use_aws), verifier(table, routing)
            )
            if plan.gates.sync is not None
            else None
        )
        self.shadow = plan.gates.shadow

    def start(self, state: RolloutState) -> None:
        if self.sync is not None:
            state.gate_origin["sync"] = self.sync.start()

    def __call__(self, state: RolloutState) -> list[Verdict]:
        verdicts: list[Verdict] = []
        if self.sync is not None:
            if "sync" not in state.gate_origin:  # unreadable at the start: from now on
                try:
                    state.gate_origin["sync"] = self.sync.start()
                except Exception as exc:  # the status commands or SQS: any failure
                    return [
                        Verdict("sync", Result.PROVIDER_ERROR, f"sync status unavailable: {exc}")
                    ]
            verdicts += self.sync.check(state.gate_origin["sync"])
        if self.shadow is not None and state.step <= 0:
            verdicts.append(shadow_verdict(self.routing, state.route, self.shadow))
        return verdicts


def route_gates(table: RoutingTable, routing: Path, plan: RolloutPlan, use_aws: bool) -> RouteGates:
    return RouteGates(table, routing, plan, use_aws)


def shadow_verdict(routing: Path, route: str, gate: ShadowGate) -> Verdict:
    """The shadow gate of the first live step: the route's difference rate (noise
    removed) under ``max_difference`` over at least ``min_sample`` compared requests."""
    from facade.routing.loader import load_table
    from facade.shadow.store import route_report

    try:
        table = load_table(routing)
        shadow = table.route(route).shadow
        if shadow is None:
            return Verdict(
                "shadow", Result.INCONCLUSIVE, f"route {route} has no shadow block to compare"
            )
        found = route_report(table, route).summary
    except Exception as exc:  # an unreadable store is a provider error, never a pass
        return Verdict("shadow", Result.PROVIDER_ERROR, f"shadow store unreadable: {exc}")
    rate = 100.0 * found.difference_rate
    details = {"compared": found.compared, "differing": found.differing}
    if found.compared < gate.min_sample:
        return Verdict(
            "shadow",
            Result.INCONCLUSIVE,
            f"{found.compared} of {gate.min_sample} shadowed requests compared",
            canary_n=found.compared,
            estimate=rate,
            unit="%",
            details=details,
        )
    if rate > gate.max_difference:
        return Verdict(
            "shadow",
            Result.INCONCLUSIVE,
            f"{rate:.2f} % of shadowed requests differ (at most {gate.max_difference:g} %)",
            canary_n=found.compared,
            estimate=rate,
            unit="%",
            details=details,
        )
    return Verdict(
        "shadow",
        Result.PASS,
        f"{rate:.2f} % of {found.compared} shadowed requests differ",
        canary_n=found.compared,
        estimate=rate,
        unit="%",
        details=details,
    )


__all__ = [
    "RouteGates",
    "SyncGateCheck",
    "route_gates",
    "shadow_verdict",
    "status_figures",
    "verifier",
]
