"""The dashboard's buttons: preview a change, then make it — through the paths the
command line uses, never a second copy of them.

Route edits (shift, promote, rollback) go through ``facade.routing.edit.apply_edit``,
as ``strangler shift`` and the admin API do: the preview is the same edit with
``dry_run`` (validated, nothing written), and the confirmed edit is refused when its
result is no longer the one previewed (someone changed the route in between), so what
was confirmed is what is written. Both take the file's lock and fsync: they run on a
thread, never on the event loop.

Rollout controls (pause, resume, promote, abort) append a command with
``RolloutStore.send`` and then settle it as ``strangler rollout <command>`` does: a
running controller reads it within its poll; without one, the command is carried out
here, under the lease, by the controller's own code. A paused rollout with no
controller is resumed from a terminal (``strangler rollout resume``): a rollout runs in
the foreground of its controller, never inside the facade.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from facade.exceptions import ConfigError
from facade.rollout.engine import first_step
from facade.rollout.state import COMMANDS, RolloutStore, state_dir
from facade.routing.edit import Change, apply_edit
from facade.routing.loader import load_table
from facade.routing.model import RoutingTable

EDITS = ("shift", "promote", "rollback")
WHO = "dashboard"
SETTLE_SECONDS = 5.0  # how long a rollout command waits for a running controller


@dataclass(frozen=True)
class Preview:
    """A change to confirm: what it does and the weights before and after."""

    action: str  # shift | promote | rollback | rollout.<command>
    route: str
    before: dict[str, float]
    after: dict[str, float]
    description: str
    fields: dict[str, str]  # what the confirmation posts back


def _shares(table: RoutingTable, route: str) -> dict[str, float]:
    return {t.backend: t.percent for t in table.route(route).targets}


def _edit_arguments(action: str, fields: dict[str, str]) -> tuple[str | None, float | None]:
    if action not in EDITS:
        raise ConfigError(f"no action {action!r}; actions: {', '.join(EDITS)}")
    backend = fields.get("to") or None
    percent: float | None = None
    if action == "shift":
        if backend is None:
            raise ConfigError("shift needs a backend to move traffic to")
        try:
            percent = float(fields.get("percent", ""))
        except ValueError:
            raise ConfigError(
                f"percent {fields.get('percent')!r}: a percentage from 0 to 100 in steps of 0.1"
            ) from None
    return backend, percent


def preview_edit(routing: Path, action: str, route: str, fields: dict[str, str]) -> Preview:
    """The edit as it would be made now; ``ConfigError`` says why it would be refused."""
    backend, percent = _edit_arguments(action, fields)
    change = apply_edit(routing, action, route, backend=backend, percent=percent, dry_run=True)
    posted = {"to": backend or "", "percent": "" if percent is None else f"{percent:g}"}
    return Preview(action, route, change.before, change.after, change.describe(), posted)


def apply(routing: Path, action: str, route: str, fields: dict[str, str]) -> Change:
    """Make the previewed edit; refused when its result differs from ``fields``'s
    ``after.<backend>`` values (the route changed since the preview)."""
    backend, percent = _edit_arguments(action, fields)
    expected = {
        key.removeprefix("after."): float(value)
        for key, value in fields.items()
        if key.startswith("after.")
    }

    def unchanged_since_preview(table: RoutingTable) -> None:
        if expected and _shares(table, route) != expected:
            now = ", ".join(f"{b} {p:g}%" for b, p in _shares(table, route).items())
            raise ConfigError(
                f"route {route!r} changed since the preview: this edit would now give {now}; "
                "review it again"
            )

    return apply_edit(
        routing,
        action,
        route,
        backend=backend,
        percent=percent,
        who=WHO,
        push=unchanged_since_preview,
    )


def preview_command(routing: Path, route: str, command: str) -> Preview:
    """A rollout command and the canary weight it leads to."""
    if command not in COMMANDS:
        raise ConfigError(f"no rollout command {command!r}; commands: {', '.join(COMMANDS)}")
    store = RolloutStore(state_dir(routing), route)
    state = store.load()
    if state is None:
        raise ConfigError(f"route {route!r} has no rollout")
    if state.phase.finished:
        raise ConfigError(f"the rollout of {route!r} is {state.phase}: nothing to {command}")
    if command == "resume" and store.holder() is None:
        raise ConfigError(
            f"no controller runs the rollout of {route!r}: resume it from a terminal with "
            f"`strangler rollout resume {route}` (a rollout runs in its controller's foreground)"
        )
    table = load_table(routing)
    before = _shares(table, route)
    canary, baseline = state.canary, state.baseline
    share = state.configured
    plan = table.route(route).rollout
    if command == "abort":
        share = 0
    elif command == "promote":
        if plan is None or state.step + 1 >= len(plan.steps):
            share = 1000
        else:
            share = plan.steps[max(state.step + 1, first_step(plan, state.configured))].share
    after = dict(before)
    if command in ("abort", "promote"):
        after.update({canary: share / 10, baseline: 100 - share / 10})
    words = {
        "abort": f"roll {route} back: {canary} to 0 %",
        "promote": f"skip {route} ahead: {canary} to {share / 10:g} %",
        "pause": f"hold {route} at its weight until resumed",
        "resume": f"resume the rollout of {route}",
    }
    return Preview(f"rollout.{command}", route, before, after, words[command], {})


def command(routing: Path, route: str, name: str) -> str:
    """Send a rollout command and settle it as the command line does; what happened."""
    from facade.rollout import cli as rollout_cli

    preview_command(routing, route, name)  # the same refusals as the preview
    store = RolloutStore(state_dir(routing), route)
    args: dict[str, Any] = {"full": False} if name == "promote" else {}
    number = store.send(name, WHO, **args)
    state = rollout_cli.settle_route(routing, route, store, {}, None, SETTLE_SECONDS)
    outcome = f"{name} sent to the rollout of {route} (#{number})"
    if state is None:
        return outcome
    if state.commands_seen < number:
        return outcome + "; the controller has not read it yet"
    why = state.paused_reason if str(state.phase) == "paused" else state.reason
    return outcome + f"; {route}: {state.phase}" + (f" — {why}" if why else "")


__all__ = ["EDITS", "WHO", "Preview", "apply", "command", "preview_command", "preview_edit"]
