"""The facade's own endpoints under ``/__facade/``.

``GET  /__facade/health``                       liveness, the table's generation and source
``GET  /__facade/metrics``                      Prometheus exposition
``GET  /__facade/admin/routes``                 the live table (routes, targets, weights)
``POST /__facade/admin/routes/{name}/shift``    ``{"to": backend, "percent": P}``
``POST /__facade/admin/routes/{name}/promote``  ``{"to": backend}`` (optional)
``POST /__facade/admin/routes/{name}/rollback`` ``{}``
``GET  /__facade/admin/faults``                 the faults of every backend that has some
``PUT  /__facade/admin/faults/{backend}``       ``{"abort": {"percent": P, "status": S},
                                                  "delay": {"percent": P, "seconds": T}}``
``DELETE /__facade/admin/faults/{backend}``     no more faults on that backend
``GET  /__facade/dashboard``                    the live migration dashboard (``facade.dashboard``)

They are served on the admin listener only (``facade.admin.listen``, loopback by
default, like Envoy's admin port); the public listener answers 404 for ``/__facade/``.
The admin endpoints need ``Authorization: Bearer <token>``; the token comes from the
environment variable or file named in ``facade.admin`` of routing.yaml. With no token
configured the admin API does not exist (404). Edits go through the same code as the
CLI (``facade.routing.edit``): routing.yaml is rewritten, the audit log gets a line,
and this process swaps to the new table at once (the others within their poll). Faults
are edits of the file too, not state of one process: with ``serve --workers N`` (or
several facades on one file) every worker injects the same faults, and they survive a
restart until they are cleared. The
edit — a file lock that ``strangler shift --apply`` may hold for a whole AWS push, a
YAML round trip, an fsync — runs on a thread: proxying never waits for it.
"""

from __future__ import annotations

import asyncio
import functools
import hmac
import json
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from facade.exceptions import ConfigError
from facade.routing.edit import Change, FaultChange, apply_edit, set_faults
from facade.routing.model import RoutingTable

if TYPE_CHECKING:
    from facade.proxy.server import Facade

JSON = [(b"content-type", b"application/json")]
Answer = tuple[int, list[tuple[bytes, bytes]], bytes]


def _json(status: int, body: Any) -> Answer:
    return status, JSON, json.dumps(body, indent=1).encode()


def _error(status: int, code: str, message: str) -> Answer:
    return _json(status, {"error": {"status": status, "code": code, "message": message}})


def admin_token(table: RoutingTable) -> str | None:
    settings = table.settings
    if settings.admin_token_file:
        path = Path(settings.admin_token_file)
        if not path.is_absolute():
            path = Path(table.source).parent / path
        try:
            token = path.read_text().strip()
        except OSError:
            token = ""
        if token:
            return token
    token = os.environ.get(settings.admin_token_env, "").strip()
    return token or None


def describe_table(table: RoutingTable) -> dict[str, Any]:
    return {
        "source": table.source,
        "routes": [
            {
                "name": route.name,
                "priority": None if route.name == "default" else route.priority,
                "match": {
                    "paths": list(route.match.paths),
                    "methods": list(route.match.methods),
                    "headers": {h.name: list(h.values) for h in route.match.headers},
                },
                "targets": [{"backend": t.backend, "percent": t.percent} for t in route.targets],
                "fixed_response": (
                    {
                        "status": route.fixed.status,
                        "content_type": route.fixed.content_type,
                        "body": route.fixed.body,
                    }
                    if route.fixed
                    else None
                ),
                "stickiness": route.stickiness.duration if route.stickiness else None,
                "stable_key": (
                    route.stable_key.header or f"cookie:{route.stable_key.cookie}"
                    if route.stable_key
                    else None
                ),
            }
            for route in table.all_routes
        ],
        "backends": {
            b.name: {
                "kind": b.kind.value,
                "url": b.url,
                "handler": b.handler,
                "faults": b.faults.as_dict() if b.faults else None,
            }
            for b in table.backends.values()
        },
    }


def internal(
    facade: Facade, method: str, path: str, headers: dict[str, list[str]], body: bytes
) -> Answer | Awaitable[Answer]:
    live = facade.live
    snapshot = live.current
    if path == "/__facade/health":
        return _json(
            200,
            {
                "status": "ok",
                "pid": os.getpid(),
                "generation": snapshot.generation,
                "routes": len(snapshot.table.all_routes),
                "source": snapshot.table.source,
                "last_reload_error": live.last_error,
            },
        )
    if path == "/__facade/metrics":
        payload, content_type = facade.metrics.render()
        return 200, [(b"content-type", content_type.encode())], payload
    if path == "/__facade/dashboard" or path.startswith("/__facade/dashboard/"):
        from facade.dashboard.endpoints import handle

        return handle(facade, method, path, headers, body)
    if not path.startswith("/__facade/admin/"):
        return _error(404, "not_found", f"no facade endpoint {path}")

    token = admin_token(snapshot.table)
    if token is None:
        return _error(
            404,
            "admin_disabled",
            "the admin API is off: set "
            f"{snapshot.table.settings.admin_token_env} or facade.admin.token_file",
        )
    given = (headers.get("authorization") or [""])[0]
    if not given.startswith("Bearer ") or not hmac.compare_digest(given[7:].strip(), token):
        status, answer_headers, answer = _error(
            401, "unauthorized", "a valid bearer token is required"
        )
        return status, [*answer_headers, (b"www-authenticate", b'Bearer realm="strangler"')], answer

    parts = path.strip("/").split("/")  # __facade, admin, routes[, name, action]
    if parts == ["__facade", "admin", "routes"] and method == "GET":
        return _json(200, {"generation": snapshot.generation, **describe_table(snapshot.table)})
    if len(parts) == 5 and parts[2] == "routes" and method == "POST":
        name, action = parts[3], parts[4]
        if action not in ("shift", "promote", "rollback"):
            return _error(404, "not_found", f"no admin action {action!r}")
        try:
            payload = json.loads(body or b"{}")
            if not isinstance(payload, dict):
                raise ValueError("the body must be a JSON object")
        except ValueError as exc:
            return _error(400, "bad_request", f"invalid JSON body: {exc}")
        to = payload.get("to")
        percent = payload.get("percent")
        if action == "shift" and (not isinstance(to, str) or not isinstance(percent, int | float)):
            return _error(400, "bad_request", 'shift needs {"to": "<backend>", "percent": <0-100>}')
        edit = functools.partial(
            apply_edit, live.path, action, name, backend=to, percent=percent, who="admin-api"
        )
        return _edit(facade, edit)
    if parts[:3] == ["__facade", "admin", "faults"]:
        return _faults(facade, method, parts[3:], body)
    return _error(404, "not_found", f"no admin endpoint {method} {path}")


def _faults(
    facade: Facade, method: str, rest: list[str], body: bytes
) -> Answer | Awaitable[Answer]:
    table = facade.live.current.table
    if not rest and method == "GET":
        faults = {n: b.faults.as_dict() for n, b in table.backends.items() if b.faults}
        return _json(200, {"generation": facade.live.current.generation, "faults": faults})
    if len(rest) != 1 or method not in ("PUT", "DELETE"):
        return _error(404, "not_found", f"no admin endpoint {method} /__facade/admin/faults")
    block = None
    if method == "PUT":
        try:
            block = json.loads(body or b"{}")
            if not isinstance(block, dict):
                raise ValueError("the body must be a JSON object")
        except ValueError as exc:
            return _error(400, "bad_request", f"invalid JSON body: {exc}")
    edit = functools.partial(set_faults, facade.live.path, rest[0], block, who="admin-api")
    return _edit(facade, edit)


async def _edit(facade: Facade, edit: Callable[[], Change | FaultChange]) -> Answer:
    try:
        change = await asyncio.get_running_loop().run_in_executor(None, edit)
    except ConfigError as exc:
        return _error(400, "invalid_change", str(exc))
    live = facade.live
    live.swap(change.table)
    return _json(
        200,
        {
            "changed": change.changed,
            "description": change.describe(),
            "before": change.before,
            "after": change.after,
            "generation": live.current.generation,
        },
    )
