"""What each panel of the dashboard shows, as plain data (``page`` turns it into HTML).

Every figure comes from where the command line reads it: the live routing table, the
facade's own metrics (through the ``series`` ring), the rollout state files
(``facade.rollout.state`` and ``controller.describe``, as ``rollout status --json``),
``facade.sync.cli.gather`` (as ``sync status --json``), the audit log's JSON lines, and —
where that module is installed — ``facade.shadow.store.report``.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import json
from pathlib import Path
from typing import Any

from facade.dashboard.series import Ring
from facade.rollout.controller import describe
from facade.rollout.state import RolloutStore, state_dir
from facade.routing.model import BackendKind, Route, RoutingTable

AUDIT_TAIL = 40  # audit lines shown, newest first
AUDIT_BYTES = 256 * 1024  # how far back from the log's end they are looked for


def owner(table: RoutingTable, route: Route) -> str:
    """Who serves the route: ``monolith``, the one new service's name, ``split`` or
    ``fixed response``."""
    if route.fixed is not None:
        return "fixed response"
    serving = [t.backend for t in route.targets if t.share > 0]
    if len(serving) > 1:
        return "split"
    if not serving:
        return "nobody"
    backend = table.backends[serving[0]]
    return "monolith" if backend.kind is BackendKind.MONOLITH else backend.name


def routes(table: RoutingTable, ring: Ring) -> list[dict[str, Any]]:
    """Every route in evaluation order (the default last) with its configured and
    observed shares and the latest figures of each backend."""
    out: list[dict[str, Any]] = []
    for order, route in enumerate(table.all_routes, start=1):
        observed = ring.observed_shares(route.name, ring.samples[-1].at) if ring.samples else None
        backends = []
        for target in route.targets:
            point = ring.latest((route.name, target.backend))
            backends.append(
                {
                    "backend": target.backend,
                    "kind": table.backends[target.backend].kind.value,
                    "configured": target.percent,
                    "observed": None if observed is None else observed.get(target.backend, 0.0),
                    "rate": None if point is None else point.rate,
                    "error_rate": None if point is None else point.error_rate,
                    "p50": None if point is None else point.p50,
                    "p99": None if point is None else point.p99,
                }
            )
        out.append(
            {
                "order": order,
                "name": route.name,
                "default": route is table.default,
                "paths": list(route.match.paths),
                "methods": list(route.match.methods),
                "headers": {h.name: list(h.values) for h in route.match.headers},
                "owner": owner(table, route),
                "fixed": route.fixed.status if route.fixed else None,
                "rollout": route.rollout is not None,
                "backends": backends,
            }
        )
    return out


def rollouts(routing: Path, table: RoutingTable, now: float) -> list[dict[str, Any]]:
    """Every rollout with a state file, as ``rollout status --json`` shows it, plus the
    time spent in the current step."""
    directory = state_dir(routing)
    views: list[dict[str, Any]] = []
    for path in sorted(directory.glob("*.json")):
        store = RolloutStore(directory, path.stem)
        try:
            state = store.load()
        except Exception as exc:  # an unreadable file is shown, not fatal to the page
            views.append({"route": path.stem, "error": str(exc)})
            continue
        if state is None:
            continue
        plan = next((r.rollout for r in table.all_routes if r.name == path.stem), None)
        view = describe(state, plan, store.holder())
        started = view.get("step_started") or 0.0
        view["time_in_step"] = max(0.0, now - started) if started else None
        views.append(view)
    return views


def held_back(views: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rollouts whose step a data stream holds back: a sync gate that did not pass."""
    found = []
    for view in views:
        for gate in view.get("gates") or []:
            if gate.get("metric") == "sync" and gate.get("result") != "pass":
                found.append({"route": view["route"], "step": view["step"], **gate})
    return found


def streams(table: RoutingTable, figures: dict[str, dict[str, Any]] | None) -> list[dict[str, Any]]:
    """Each sync stream of the file with its latest figures (None until read)."""
    out = []
    for stream in table.sync:
        found = (figures or {}).get(stream.name)
        out.append({"name": stream.name, "figures": found})
    return out


def audit(routing: Path, table: RoutingTable, limit: int = AUDIT_TAIL) -> list[dict[str, Any]]:
    """The audit log's last ``limit`` entries, newest first (shifts, promotions,
    rollbacks, rollout steps and verdicts)."""
    log = Path(table.settings.audit_log)
    if not log.is_absolute():
        log = routing.resolve().parent / log
    try:
        with open(log, "rb") as handle:
            handle.seek(0, 2)
            size = handle.tell()
            handle.seek(max(0, size - AUDIT_BYTES))
            lines = handle.read().decode("utf-8", "replace").splitlines()
    except FileNotFoundError:
        return []
    if size > AUDIT_BYTES:
        lines = lines[1:]  # the first line read is likely cut
    entries: list[dict[str, Any]] = []
    for line in reversed(lines):
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict):
            entries.append(entry)
        if len(entries) >= limit:
            break
    return entries


def shadow_available() -> bool:
    """Whether the shadow store (``facade.shadow.store``) is part of this installation."""
    try:
        return importlib.util.find_spec("facade.shadow.store") is not None
    except ModuleNotFoundError:
        return False


TOP_FIELDS = 5  # differing JSON paths a shadowed route shows


def shadows(table: RoutingTable) -> list[dict[str, Any]] | None:
    """Per shadowed route, its comparison as ``facade.shadow.store.route_report`` judges it:
    the summary, the noise pairs, and the top differing JSON paths (real differences
    first, by pairs affected) each with its first example pair — stored already
    redacted. None when the shadow module is not installed. Reads the stores: call it
    off the event loop."""
    if not shadow_available():
        return None
    store = importlib.import_module("facade.shadow.store")
    out: list[dict[str, Any]] = []
    for route in table.all_routes:
        if route.shadow is None:
            continue
        try:
            report = store.route_report(table, route.name)
        except Exception as exc:  # a store being written or cleared: say so, keep the page
            out.append({"route": route.name, "summary": None, "error": str(exc)})
            continue
        fields = [
            (endpoint.endpoint, field) for endpoint in report.endpoints for field in endpoint.fields
        ]
        # real differences first, then the most pairs affected (a path differing in every
        # one of 3 pairs of a rare endpoint matters less than in 8 of 40 of a busy one)
        fields.sort(key=lambda ef: (not ef[1].real, -ef[1].rates.differences, ef[0], ef[1].field))
        top = []
        for endpoint, field in fields[:TOP_FIELDS]:
            example = field.examples[0] if field.examples else None
            top.append(
                {
                    "endpoint": endpoint,
                    "field": field.field,
                    "real": field.real,
                    "rate": field.rates.rate,
                    "noise_rate": field.rates.noise_rate,
                    "example": None
                    if example is None
                    else {
                        "request": example.request,
                        "where": example.where,
                        "primary": example.primary,
                        "shadow": example.shadow,
                    },
                }
            )
        out.append(
            {
                "route": route.name,
                "summary": dataclasses.asdict(report.summary),
                "noise": {
                    "compared": report.noise_compared,
                    "differing": report.noise_differing,
                },
                "fields": top,
                "error": None,
            }
        )
    return out


__all__ = [
    "audit",
    "held_back",
    "owner",
    "rollouts",
    "routes",
    "shadow_available",
    "shadows",
    "streams",
]
