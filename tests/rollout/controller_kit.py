"""A controller on a real routing file, state store and audit log, with a clock that
moves only when the controller sleeps, counts from a scripted provider, and verdicts
from a scripted analyzer — so every path of the loop runs in milliseconds."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from facade.rollout.controller import Controller
from facade.rollout.engine import RolloutState
from facade.rollout.plan import Analysis
from facade.rollout.providers import ProviderError
from facade.rollout.samples import ArmCounts, Result, Verdict, Window
from facade.rollout.state import RolloutStore
from facade.routing.loader import load_table

ROUTING = """\
version: 1
facade:
  audit_log: audit.jsonl
backends:
  monolith: {kind: monolith, url: "http://127.0.0.1:8001"}
  orders: {kind: ecs, url: "http://127.0.0.1:8002"}
routes:
  - name: orders
    match: {paths: ["/api/orders/*"]}
    targets: {monolith: 100, orders: 0}   # moving
    rollout:
      to: orders
      steps: [1, 10, 50, 100]
      step: {min_time: %(min_time)s, min_sample: 10, max_wait: 300}
      bake: %(bake)s
      interval: 10
      on_inconclusive: %(on)s
      analysis: {watch: %(watch)s}   # 0: the scripted analyses are the only looks
default: monolith
"""


def write_routing(
    directory: Path,
    on_inconclusive: str = "pause",
    *,
    min_time: int = 30,
    bake: int = 60,
    watch: float = 0,
) -> Path:
    path = directory / "routing.yaml"
    path.write_text(
        ROUTING % {"on": on_inconclusive, "min_time": min_time, "bake": bake, "watch": watch}
    )
    return path


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += max(seconds, 0.001)


@dataclass
class Provider:
    """Cumulative counts growing by ``per_read`` requests a reading, split by the file's
    current weight; ``failures`` lists the readings (1-based) that fail."""

    routing: Path
    per_read: int = 100
    failures: set[int] = field(default_factory=set)
    reads: int = 0
    baseline: int = 0
    canary: int = 0
    name: str = "scripted"
    _share: int = 0

    _seen: tuple[int, int] = (0, 0)

    def read(self, route: str, baseline: str, canary: str) -> tuple[ArmCounts, ArmCounts]:
        self.reads += 1
        if self.reads in self.failures:
            raise ProviderError(f"reading {self.reads} refused")
        stat = self.routing.stat()
        if (stat.st_mtime_ns, stat.st_ino) != self._seen:
            self._share = load_table(self.routing).route(route).share_of(canary)
            self._seen = (stat.st_mtime_ns, stat.st_ino)
        share = self._share
        to_canary = self.per_read * share // 1000
        self.canary += to_canary
        self.baseline += self.per_read - to_canary
        return ArmCounts(self.baseline, 0), ArmCounts(self.canary, 0)


Script = Callable[[int, int], Result]  # (analysis number, canary requests in step) → result


class ScriptedAnalyzer:
    def __init__(self, script: Script, saved: dict[str, Any] | None) -> None:
        self.script = script
        self.n = int((saved or {}).get("n", 0))
        self.windows = int((saved or {}).get("windows", 0))

    def start_step(self, index: int) -> None:
        self.step = index

    def add(self, window: Window) -> None:
        self.windows += 1

    def verdicts(self, step_canary: int, step_baseline: int, min_sample: int) -> list[Verdict]:
        self.n += 1
        result = self.script(self.n, step_canary)
        return [Verdict("errors", result, f"scripted {result}", step_baseline, step_canary)]

    def to_dict(self) -> dict[str, Any]:
        return {"n": self.n, "windows": self.windows}


def always(result: Result) -> Script:
    return lambda n, canary: result


def make(
    directory: Path,
    script: Script | None = None,
    *,
    provider: Provider | None = None,
    clock: Clock | None = None,
    store: RolloutStore | None = None,
    **kw: Any,
) -> tuple[Controller, Clock, Provider]:
    routing = directory / "routing.yaml"
    script = script or always(Result.PASS)
    clock = clock or Clock()
    provider = provider or Provider(routing)
    controller = Controller(
        routing,
        "orders",
        store or RolloutStore(directory / "state", "orders"),
        provider,
        analyzer_factory=lambda settings, saved: ScriptedAnalyzer(script, saved),
        clock=clock,
        sleep=clock.sleep,
        say=lambda line: None,
        **kw,
    )
    return controller, clock, provider


def audit(directory: Path) -> list[dict[str, Any]]:
    path = directory / "audit.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def weights(directory: Path) -> list[float]:
    """The canary's weight after each edit of the file, in order (edit lines only)."""
    return [e["after"]["orders"] for e in audit(directory) if e.get("action") == "shift"]


def share(directory: Path) -> float:
    return load_table(directory / "routing.yaml").route("orders").share_of("orders") / 10


def saved(directory: Path) -> RolloutState:
    state = RolloutStore(directory / "state", "orders").load()
    assert state is not None
    return state


__all__ = [
    "Analysis",
    "Clock",
    "Provider",
    "ScriptedAnalyzer",
    "always",
    "audit",
    "make",
    "saved",
    "share",
    "weights",
    "write_routing",
]
