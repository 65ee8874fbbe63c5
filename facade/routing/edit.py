"""Flip routes in routing.yaml: shift, promote, rollback — keeping comments and layout.

An edit is a read-modify-write of the file under an exclusive lock (CLI and admin API
may edit at once): the YAML is loaded round-trip (ruamel.yaml keeps comments, order,
quoting and flow style), only the route's ``targets`` values change, the result is
validated as a whole before anything is written, and it replaces the file atomically
(write to a temporary file, fsync, rename), so a running proxy never reads half a file.
Each edit appends one JSON line to the audit log: when, who, route, weights before →
after.

Weights, as everywhere, are percentages in steps of 0.1 that add up to 100:

* ``shift(route, backend, P)`` gives ``backend`` P %; the other targets share the rest
  in their current proportions (all to the monolith if they had none);
* ``promote(route, backend)`` gives ``backend`` 100 % (by default the one non-monolith
  backend with the most traffic);
* ``rollback(route)`` gives the monolith 100 %. Other targets stay listed at 0, so the
  file still shows what the route is migrating to.

``set_faults(backend, block)`` writes (or, with None, removes) a backend's ``faults:``
block the same way — locked, validated whole, atomic, audited — so that every worker of
every facade serving the file injects the same faults within one poll.
"""

from __future__ import annotations

import contextlib
import fcntl
import getpass
import io
import json
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.util import load_yaml_guess_indent

from facade.exceptions import ConfigError
from facade.routing.loader import parse_share, parse_table
from facade.routing.model import SHARE_TOTAL, BackendKind, RoutingTable


@dataclass(frozen=True)
class Change:
    action: str
    route: str
    before: dict[str, float]
    after: dict[str, float]
    table: RoutingTable

    @property
    def changed(self) -> bool:
        return self.before != self.after

    def describe(self) -> str:
        parts = [
            f"{b} {self.before.get(b, 0):g}% → {self.after.get(b, 0):g}%"
            for b in dict.fromkeys([*self.before, *self.after])
        ]
        return f"{self.action} {self.route}: " + ", ".join(parts)


def _mapping_indent(text: str) -> int:
    """Indentation of the first nested mapping key under a top-level key."""
    parent_seen = False
    for line in text.splitlines():
        stripped = line.lstrip()
        if not stripped or stripped.startswith("#"):
            continue
        indent = len(line) - len(stripped)
        if indent == 0:
            parent_seen = stripped.rstrip().endswith(":")
        elif parent_seen and not stripped.startswith("-"):
            return indent
        else:
            parent_seen = False
    return 2


def _yaml(text: str) -> YAML:
    """A round-trip YAML that writes with the indentation this file already uses."""
    _, sequence, offset = load_yaml_guess_indent(text)
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096
    yaml.indent(mapping=_mapping_indent(text), sequence=sequence or 2, offset=offset or 0)
    return yaml


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    lock_path = path.with_name(f".{path.name}.lock")
    with open(lock_path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def write_atomically(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        if path.exists():
            os.chmod(tmp, path.stat().st_mode & 0o777)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _targets_node(document: CommentedMap, route: str) -> tuple[Any, Any]:
    """(container, key) of the route's targets in the YAML document."""
    if route == "default":
        default = document.get("default")
        if isinstance(default, CommentedMap):
            return default, "targets"
        return document, "default"
    routes = document.get("routes")
    if isinstance(routes, CommentedSeq):
        for item in routes:
            if isinstance(item, CommentedMap) and item.get("name") == route:
                return item, "targets"
    names = [r.get("name") for r in routes or [] if isinstance(r, CommentedMap)]
    raise ConfigError(f"no route named {route!r}; routes: {', '.join(map(str, names))}, default")


def _current(container: Any, key: Any) -> dict[str, int]:
    node = container[key]
    if isinstance(node, str):
        return {node: SHARE_TOTAL}
    shares: dict[str, int] = {}
    for name, value in node.items():
        share = parse_share(value)
        shares[str(name)] = share if share is not None else 0
    return shares


def _number(share: int) -> int | float:
    return share // 10 if share % 10 == 0 else share / 10


def _set(container: Any, key: Any, shares: dict[str, int]) -> None:
    node = container[key]
    if isinstance(node, str):  # the shorthand "targets: monolith" grows into a mapping
        mapping = CommentedMap()
        mapping.fa.set_flow_style()
        container[key] = mapping
        node = mapping
    for name in list(node):
        if name not in shares:
            del node[name]
    for name, share in shares.items():
        node[name] = _number(share)


def _percent(shares: dict[str, int]) -> dict[str, float]:
    return {name: share / 10 for name, share in shares.items()}


def _monolith_of(table: RoutingTable, names: list[str]) -> str:
    for name in names:
        backend = table.backends.get(name)
        if backend is not None and backend.kind is BackendKind.MONOLITH:
            return name
    for backend in table.backends.values():
        if backend.kind is BackendKind.MONOLITH:
            return backend.name
    raise ConfigError("no backend of kind monolith to roll back to")


def _plan(
    action: str,
    table: RoutingTable,
    shares: dict[str, int],
    backend: str | None,
    percent: float | None,
) -> dict[str, int]:
    names = list(shares)
    if backend is not None and backend not in table.backends:
        raise ConfigError(f"no backend named {backend!r}; backends: {', '.join(table.backends)}")
    if action == "rollback":
        monolith = _monolith_of(table, names)
        return {**dict.fromkeys(names, 0), monolith: SHARE_TOTAL}
    if action == "promote":
        if backend is None:
            candidates = [n for n in names if table.backends[n].kind is not BackendKind.MONOLITH]
            if not candidates:
                raise ConfigError(
                    "nothing to promote: the route has no non-monolith backend; name one with --to"
                )
            backend = max(candidates, key=lambda n: shares[n])
        return {**dict.fromkeys(names, 0), backend: SHARE_TOTAL}
    # shift
    assert backend is not None
    assert percent is not None
    wanted = parse_share(percent)
    if wanted is None:
        raise ConfigError(f"--percent {percent}: a percentage from 0 to 100 in steps of 0.1")
    others = {n: s for n, s in shares.items() if n != backend}
    rest = SHARE_TOTAL - wanted
    result = {**dict.fromkeys(names, 0), backend: wanted}
    if rest:
        total = sum(others.values())
        if total == 0:
            result[_monolith_of(table, [n for n in names if n != backend])] = rest
        else:
            allotted = {n: s * rest // total for n, s in others.items()}
            # hand out what integer division left over, largest remainders first
            leftover = rest - sum(allotted.values())
            order = sorted(others, key=lambda n: (-(others[n] * rest % total), n))
            for name in order[:leftover]:
                allotted[name] += 1
            result.update(allotted)
    return result


def apply_edit(
    path: str | Path,
    action: str,
    route: str,
    *,
    backend: str | None = None,
    percent: float | None = None,
    who: str | None = None,
    audit_log: str | Path | None = None,
    push: Callable[[RoutingTable], object] | None = None,
    dry_run: bool = False,
) -> Change:
    """Edit one route's weights in place and return the change; invalid results are not
    written. ``push`` (``--apply``) gets the new table before the file is written: if it
    raises, the file stays as it was. ``dry_run`` validates and returns the change
    without pushing or writing anything (a preview to confirm)."""
    path = Path(path)
    with _locked(path):
        text = path.read_text(encoding="utf-8")
        yaml = _yaml(text)
        table = parse_table(text, str(path))  # refuse to edit a file that is already invalid
        fixed = next((r for r in table.routes if r.name == route and r.fixed), None)
        if fixed is not None:
            raise ConfigError(
                f"route {route!r} answers a fixed response (a deny rule): it has no targets "
                "to move; edit its fixed_response in the file"
            )
        document = yaml.load(text)
        container, key = _targets_node(document, route)
        before = _current(container, key)
        after = _plan(action, table, before, backend, percent)
        _set(container, key, after)
        out = io.StringIO()
        yaml.dump(document, out)
        new_text = out.getvalue()
        new_table = parse_table(new_text, str(path))
        change = Change(action, route, _percent(before), _percent(after), new_table)
        if dry_run:
            return change
        if push is not None:
            push(new_table)
        if change.changed:
            write_atomically(path, new_text)
            log_path = Path(audit_log or new_table.settings.audit_log)
            if not log_path.is_absolute():
                log_path = path.parent / log_path
            _audit(log_path, change, who or _who(), path)
    return change


@dataclass(frozen=True)
class FaultChange:
    backend: str
    before: dict[str, dict[str, float]]  # the faults block before, as Faults.as_dict()
    after: dict[str, dict[str, float]]
    table: RoutingTable

    @property
    def changed(self) -> bool:
        return self.before != self.after

    def describe(self) -> str:
        return (
            f"faults {self.backend}: {describe_faults(self.before)} → {describe_faults(self.after)}"
        )


def describe_faults(block: dict[str, dict[str, float]]) -> str:
    """A faults block in words: ``abort 10% with 503, delay 50% by 0.2s``."""
    parts = []
    if "abort" in block:
        parts.append(f"abort {block['abort']['percent']:g}% with {block['abort']['status']:g}")
    if "delay" in block:
        parts.append(f"delay {block['delay']['percent']:g}% by {block['delay']['seconds']:g}s")
    return ", ".join(parts) or "none"


def _faults_node(block: Mapping[str, object]) -> CommentedMap:
    """``{abort: {percent: P, status: S}, delay: {...}}`` as a flow-style YAML mapping; the
    loader judges the names and values, this only refuses what is not that shape."""
    node = CommentedMap()
    node.fa.set_flow_style()
    for name, inner in block.items():
        if not isinstance(inner, Mapping) or not all(
            isinstance(v, int | float | str) for v in inner.values()
        ):
            raise ConfigError(
                f"faults.{name}: must be a mapping of numbers, e.g. "
                '{"abort": {"percent": 10, "status": 503}, '
                '"delay": {"percent": 50, "seconds": 0.2}}'
            )
        child = CommentedMap(
            (str(k), int(v) if isinstance(v, float) and v.is_integer() else v)
            for k, v in inner.items()
        )
        child.fa.set_flow_style()
        node[str(name)] = child
    return node


def set_faults(
    path: str | Path,
    backend: str,
    block: Mapping[str, object] | None,
    *,
    who: str | None = None,
    audit_log: str | Path | None = None,
) -> FaultChange:
    """Set a backend's ``faults:`` to ``block`` (None or empty: remove them) and return the
    change; a result the loader refuses is not written."""
    path = Path(path)
    with _locked(path):
        text = path.read_text(encoding="utf-8")
        yaml = _yaml(text)
        table = parse_table(text, str(path))
        if backend not in table.backends:
            raise ConfigError(
                f"no backend named {backend!r}; backends: {', '.join(table.backends)}"
            )
        document = yaml.load(text)
        body = document["backends"][backend]
        if block:
            body["faults"] = _faults_node(block)
        elif "faults" in body:
            del body["faults"]
        out = io.StringIO()
        yaml.dump(document, out)
        new_text = out.getvalue()
        new_table = parse_table(new_text, str(path))
        before, after = table.backends[backend].faults, new_table.backends[backend].faults
        change = FaultChange(
            backend,
            before.as_dict() if before else {},
            after.as_dict() if after else {},
            new_table,
        )
        if new_text != text:
            write_atomically(path, new_text)
            log_path = Path(audit_log or new_table.settings.audit_log)
            if not log_path.is_absolute():
                log_path = path.parent / log_path
            entry = {"action": "faults", "backend": backend}
            _append_audit(log_path, who or _who(), path, entry, change.before, change.after)
    return change


def edit_canary(
    path: str | Path,
    backend: str,
    share: int,
    *,
    promote: bool = False,
    who: str | None = None,
    push: Callable[[RoutingTable], object] | None = None,
) -> Change:
    """Give a Lambda backend's new version ``share`` (tenths) in its ``canary:`` block —
    or, with ``promote``, make it the version serving (``from: NEW``, weight 0) — under
    the same lock, validation, ``push``-before-write and audit line as a route's edit."""
    path = Path(path)
    with _locked(path):
        text = path.read_text(encoding="utf-8")
        yaml = _yaml(text)
        table = parse_table(text, str(path))
        found = table.backends.get(backend)
        canary = found.canary if found is not None else None
        if canary is None:
            raise ConfigError(f"{path}: backend {backend!r} has no canary block")
        document = yaml.load(text)
        node = document["backends"][backend]["canary"]
        before = {canary.baseline: 100 - canary.share / 10, canary.canary: canary.share / 10}
        if promote:
            node["from"] = node["to"]
            share = 0
            after = {canary.canary: 100.0}
        else:
            after = {canary.baseline: 100 - share / 10, canary.canary: share / 10}
        node["weight"] = _number(share)
        out = io.StringIO()
        yaml.dump(document, out)
        new_text = out.getvalue()
        new_table = parse_table(new_text, str(path))
        action = "canary.promote" if promote else "canary"
        change = Change(action, canary.key, before, after, new_table)
        if push is not None:
            push(new_table)
        if new_text != text:
            write_atomically(path, new_text)
            log_path = Path(new_table.settings.audit_log)
            if not log_path.is_absolute():
                log_path = path.parent / log_path
            _audit(log_path, change, who or _who(), path)
    return change


def _who() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid {os.getuid()}"


def _audit(log_path: Path, change: Change, who: str, file: Path) -> None:
    entry = {"action": change.action, "route": change.route}
    _append_audit(log_path, who, file, entry, change.before, change.after)


def _append_audit(
    log_path: Path, who: str, file: Path, what: dict[str, str], before: object, after: object
) -> None:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    entry = {
        "at": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "who": who,
        **what,
        "before": before,
        "after": after,
        "file": str(file),
    }
    with open(log_path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(entry) + "\n")


__all__ = [
    "Change",
    "FaultChange",
    "apply_edit",
    "describe_faults",
    "edit_canary",
    "set_faults",
]
