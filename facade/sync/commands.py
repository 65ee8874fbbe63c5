"""Running a stream's own commands (routing.yaml ``sync.<stream>.commands``) on this
machine, in the environment ``strangler up`` gives that side: backfill, emit, the
outbox's status and ``source_digest`` run on the publishing side (``from``), the
inbox's status and ``target_digest`` on the applying side (``to``)."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from facade.exceptions import ConfigError
from facade.routing.model import RoutingTable, SyncStream
from facade.topology import backend_environment, base_environment, expand

SIDE = {
    "backfill": "source", "emit": "source", "outbox_status": "source", "source_digest": "source",
    "inbox_status": "target", "target_digest": "target",
}  # fmt: skip


def argv_and_env(
    table: RoutingTable, routing: Path, stream: SyncStream, key: str, args: list[str]
) -> tuple[list[str], dict[str, str]]:
    template = stream.commands.get(key)
    if template is None:
        raise ConfigError(
            f"{table.source}: sync.{stream.name}.commands has no {key!r} command; "
            "add one (README: routing.yaml's sync block)"
        )
    environ, base = base_environment(table, routing, {})
    backend = table.backends[stream.source if SIDE[key] == "source" else stream.target]
    env = backend_environment(table, backend, environ, base)
    where = f"{table.source}: sync.{stream.name}.commands.{key}"
    text = expand(
        template.replace("{python}", shlex.quote(sys.executable)), {**environ, **env}, where
    )
    return [*shlex.split(text), *args], env


def run(
    table: RoutingTable,
    routing: Path,
    stream: SyncStream,
    key: str,
    args: list[str],
    *,
    capture: bool,
    extra_env: Mapping[str, str] | None = None,
    timeout: float | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a stream's command; ``timeout`` seconds at most (``ConfigError`` when it is
    exceeded: the command is killed)."""
    argv, env = argv_and_env(table, routing, stream, key, args)
    try:
        return subprocess.run(  # noqa: S603 - the user's own configured command, no shell
            argv,
            env={**os.environ, **env, **(extra_env or {})},
            cwd=str(Path(routing).resolve().parent),
            capture_output=capture,
            text=True,
            check=False,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as exc:
        raise ConfigError(
            f"sync.{stream.name}.commands.{key} did not finish in {timeout:g}s"
        ) from exc


def run_json(
    table: RoutingTable,
    routing: Path,
    stream: SyncStream,
    key: str,
    args: list[str],
    *,
    timeout: float | None = None,
) -> tuple[int, Any]:
    result = run(table, routing, stream, key, args, capture=True, timeout=timeout)
    try:
        return result.returncode, json.loads(result.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError) as exc:
        raise ConfigError(
            f"sync.{stream.name}.commands.{key} did not print JSON (exit {result.returncode}): "
            f"{(result.stderr or result.stdout).strip()[-500:]}"
        ) from exc
