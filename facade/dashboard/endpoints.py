"""The dashboard's URLs under ``/__facade/dashboard`` on the admin listener.

``GET  /__facade/dashboard``                          the page (a sign-in form without a token)
``POST /__facade/dashboard/login``                    ``token=…``: sets the session cookie
``GET  /__facade/dashboard/static/<file>``            the page's scripts, styles, libraries
``GET  /__facade/dashboard/panel/<name>``             one panel: meta, routes, rollouts, data,
                                                      shadows, audit (what a poll swaps in)
``GET  /__facade/dashboard/series``                   the charts' series, JSON
``GET  /__facade/dashboard/shadow/<route>``           the route's shadow report, JSON
``GET  /__facade/dashboard/action/<edit>/<route>``    shift: its form; promote, rollback: the
                                                      confirmation
``POST /__facade/dashboard/preview/shift/<route>``    the shift's confirmation
``GET  /__facade/dashboard/action/rollout/<c>/<route>`` a rollout command's confirmation
``POST /__facade/dashboard/apply/<edit>/<route>``     make the confirmed edit
``POST /__facade/dashboard/apply/rollout/<c>/<route>`` send the confirmed rollout command

Access: the admin token, as ``Authorization: Bearer`` (scripts) or as the session cookie
the sign-in form sets — an HMAC of the token, so changing the token ends every session;
``HttpOnly``, ``SameSite=Strict``, scoped to ``/__facade/``. A change (POST) carried by
the cookie must also carry htmx's ``HX-Request`` header, which no cross-site form can
send. With no admin token configured, the dashboard does not exist (404), like the
admin API.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import urllib.parse
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

from facade.dashboard import Board, actions, attach, page, views
from facade.exceptions import ConfigError
from facade.proxy.admin import Answer, admin_token

if TYPE_CHECKING:
    from facade.proxy.server import Facade

PREFIX = "/__facade/dashboard"
COOKIE = "strangler_dashboard"
STATIC = Path(__file__).parent / "static"
TYPES = {
    ".js": b"text/javascript; charset=utf-8",
    ".css": b"text/css; charset=utf-8",
    ".png": b"image/png",
    ".svg": b"image/svg+xml",
}
# scripts only from here; uPlot and the weight bars set styles inline
POLICY = (
    b"default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    b"img-src 'self' data:; frame-ancestors 'none'; form-action 'self'"
)
HTML = [
    (b"content-type", b"text/html; charset=utf-8"),
    (b"cache-control", b"no-store"),
    (b"content-security-policy", POLICY),
    (b"x-frame-options", b"DENY"),
]


def _static_files() -> dict[str, Path]:
    return {
        path.relative_to(STATIC).as_posix(): path
        for path in STATIC.rglob("*")
        if path.is_file() and path.suffix in TYPES
    }


_FILES = _static_files()


def session(token: str) -> str:
    """The cookie's value for a token: proves the token without being it."""
    return hmac.new(token.encode(), b"strangler dashboard session", hashlib.sha256).hexdigest()


def _cookie(headers: dict[str, list[str]]) -> str | None:
    for line in headers.get("cookie", []):
        for part in line.split(";"):
            name, _, value = part.strip().partition("=")
            if name == COOKIE:
                return value
    return None


def _html(status: int, body: str, extra: list[tuple[bytes, bytes]] | None = None) -> Answer:
    return status, [*HTML, *(extra or [])], body.encode()


def _form(body: bytes) -> dict[str, str]:
    parsed = urllib.parse.parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    return {key: values[-1] for key, values in parsed.items()}


def handle(
    facade: Facade, method: str, path: str, headers: dict[str, list[str]], body: bytes
) -> Answer | Awaitable[Answer]:
    table = facade.live.current.table
    token = admin_token(table)
    if token is None:
        return _html(
            404,
            f"<p>The dashboard is off: set {table.settings.admin_token_env} or "
            "facade.admin.token_file.</p>",
        )
    rest = path[len(PREFIX) :].strip("/")
    if rest == "login" and method == "POST":
        given = _form(body).get("token", "").strip()
        if given and hmac.compare_digest(given, token):
            cookie = f"{COOKIE}={session(token)}; Path=/__facade/; HttpOnly; SameSite=Strict"
            return 303, [(b"location", PREFIX.encode()), (b"set-cookie", cookie.encode())], b""
        return _html(401, page.login("That is not the admin token."))

    bearer = (headers.get("authorization") or [""])[0]
    by_bearer = bearer.startswith("Bearer ") and hmac.compare_digest(bearer[7:].strip(), token)
    by_cookie = hmac.compare_digest(_cookie(headers) or "", session(token))
    if not (by_bearer or by_cookie):
        if rest == "" and method == "GET":
            return _html(401, page.login(), [(b"www-authenticate", b'Bearer realm="strangler"')])
        return 401, [(b"content-type", b"text/plain"), (b"hx-refresh", b"true")], b"sign in again"
    if method == "POST" and not by_bearer and not headers.get("hx-request"):
        return 403, [(b"content-type", b"text/plain")], b"changes come from the dashboard's page"

    board = attach(facade)
    parts = rest.split("/") if rest else []
    if method == "GET" and not parts:
        names = ("meta", "routes", "rollouts", "data", "shadows", "audit")
        return _html(200, page.page(table.source, {name: _panel(board, name) for name in names}))
    if method == "GET" and parts[0] == "static":
        file = _FILES.get("/".join(parts[1:]))
        if file is None:
            return 404, [(b"content-type", b"text/plain")], b"no such file"
        kind = TYPES[file.suffix]
        return 200, [(b"content-type", kind), (b"cache-control", b"no-cache")], file.read_bytes()
    if method == "GET" and len(parts) == 2 and parts[0] == "panel":
        if parts[1] not in PANELS:
            return 404, [(b"content-type", b"text/plain")], b"no such panel"
        return _html(200, _panel(board, parts[1]))
    if method == "GET" and parts == ["series"]:
        return _series(board)
    if method == "GET" and len(parts) == 2 and parts[0] == "shadow":
        return _shadow_report(board, urllib.parse.unquote(parts[1]))
    if parts[:2] == ["action", "cancel"]:
        return _html(200, "")
    return _action(board, method, parts, body)


# -- panels -------------------------------------------------------------------------------


def _meta(board: Board) -> str:
    facade = board.facade
    shared = facade.metrics.shared_dir
    workers = 1
    if shared is not None:  # the workers alive among those that shared their figures
        workers = sum(
            _alive(path.stem.removeprefix("worker-")) for path in shared.glob("worker-*.json")
        )
    return page.meta(
        facade.live.current.generation, os.getpid(), max(workers, 1), facade.live.last_error
    )


def _alive(pid: str) -> bool:
    try:
        os.kill(int(pid), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True


def _routes(board: Board) -> str:
    return page.routes(views.routes(board.facade.live.current.table, board.ring))


def _rollouts(board: Board) -> str:
    table = board.facade.live.current.table
    return page.rollouts(views.rollouts(board.routing, table, board.origin + board.clock()))


def _data(board: Board) -> str:
    table = board.facade.live.current.table
    reading = board.sync.get(board.facade.loop) if table.sync else None
    now = board.origin + board.clock()
    held = views.held_back(views.rollouts(board.routing, table, now))
    return page.data(
        views.streams(table, reading.value if reading else None),
        held,
        reading.error if reading else None,
        reading.age if reading else None,
    )


def _shadows(board: Board) -> str:
    if not views.shadow_available():
        return page.shadows(None)
    reading = board.shadows.get(board.facade.loop)
    return page.shadows(reading.value, reading.error, reading.age)


def _shadow_report(board: Board, route: str) -> Answer | Awaitable[Answer]:
    """``strangler shadow report ROUTE --json`` of a shadowed route (read on a thread)."""
    table = board.facade.live.current.table
    found = next((r for r in table.all_routes if r.name == route), None)
    if found is None or found.shadow is None or not views.shadow_available():
        return 404, [(b"content-type", b"text/plain")], b"no shadowed route of that name"

    def read() -> bytes:
        from facade.shadow import report, store

        return json.dumps(report.as_json(store.route_report(table, route)), indent=1).encode()

    async def answer() -> Answer:
        try:
            body = await asyncio.get_running_loop().run_in_executor(None, read)
        except Exception as exc:  # a store being written or cleared
            return 503, [(b"content-type", b"text/plain")], str(exc).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"cache-control", b"no-store"),
            (b"x-content-type-options", b"nosniff"),
        ]
        return 200, headers, body

    return answer()


def _audit(board: Board) -> str:
    return page.audit(views.audit(board.routing, board.facade.live.current.table))


PANELS: dict[str, Callable[[Board], str]] = {
    "meta": _meta,
    "routes": _routes,
    "rollouts": _rollouts,
    "data": _data,
    "shadows": _shadows,
    "audit": _audit,
}


def _panel(board: Board, name: str) -> str:
    try:
        return PANELS[name](board)
    except ConfigError as exc:  # a state file or store that cannot be read: shown in place
        return page.refused(str(exc))


def _series(board: Board) -> Answer:
    table = board.facade.live.current.table
    series = board.ring.series(board.origin)
    series["pid"] = os.getpid()
    series["order"] = [
        {"route": route.name, "backends": [t.backend for t in route.targets]}
        for route in table.all_routes
        if route.targets
    ]
    return (
        200,
        [(b"content-type", b"application/json"), (b"cache-control", b"no-store")],
        (json.dumps(series).encode()),
    )


# -- actions ------------------------------------------------------------------------------


async def _off_loop(call: Callable[[], str]) -> Answer:
    """Run an edit or a command on a thread; a refusal is shown with its reason."""
    try:
        html = await asyncio.get_running_loop().run_in_executor(None, call)
    except ConfigError as exc:
        return _html(409, page.refused(str(exc)))
    return _html(200, html)


def _action(board: Board, method: str, parts: list[str], body: bytes) -> Answer | Awaitable[Answer]:
    routing = board.routing
    facade = board.facade
    if len(parts) == 4 and parts[1] == "rollout":
        verb, _, command, route = parts
        if verb == "action" and method == "GET":
            return _off_loop(
                lambda: page.confirmation(actions.preview_command(routing, route, command))
            )
        if verb == "apply" and method == "POST":
            return _off_loop(lambda: page.done(None, actions.command(routing, route, command)))
    if len(parts) != 3:
        return 404, [(b"content-type", b"text/plain")], b"no such dashboard endpoint"
    verb, action, route = parts
    if action not in actions.EDITS:
        return 404, [(b"content-type", b"text/plain")], b"no such action"
    if verb == "action" and method == "GET":
        if action == "shift":
            table = facade.live.current.table
            try:
                found = table.route(route)
            except KeyError as exc:
                return _html(409, page.refused(str(exc.args[0])))
            targets = {t.backend: t.percent for t in found.targets}
            return _html(200, page.shift_form(route, targets, list(table.backends)))
        return _off_loop(
            lambda: page.confirmation(actions.preview_edit(routing, action, route, {}))
        )
    if verb == "preview" and method == "POST":
        fields = _form(body)
        return _off_loop(
            lambda: page.confirmation(actions.preview_edit(routing, action, route, fields))
        )
    if verb == "apply" and method == "POST":
        fields = _form(body)

        def edit() -> str:
            change = actions.apply(routing, action, route, fields)
            # this worker serves the new table at once; the others within their poll
            facade.loop.call_soon_threadsafe(facade.live.swap, change.table)
            return page.done(change, change.describe())

        return _off_loop(edit)
    return 404, [(b"content-type", b"text/plain")], b"no such dashboard endpoint"


__all__ = ["COOKIE", "PREFIX", "handle", "session"]
