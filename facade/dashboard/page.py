"""The dashboard's HTML: the page, each panel (what a poll swaps in), the action forms
and confirmations. Every value is escaped here; the data comes from ``views``.

Elements carry ``data-*`` attributes with the raw figures (``data-route``,
``data-backend``, ``data-percent``, ``data-state``) so that scripts and tests read
numbers, not formatted text.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from html import escape
from typing import Any
from urllib.parse import quote

from facade.dashboard.actions import Preview
from facade.routing.edit import Change

BASE = "/__facade/dashboard"
POLL = "every 1s"


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _pct(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:.{digits}f} %".replace(".0 %", " %")


def _ms(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.1f} ms" if value < 100 else f"{value:.0f} ms"


def _rate(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}/s"


def _seconds(value: float | None) -> str:
    if value is None:
        return "—"
    value = int(value)
    if value < 120:
        return f"{value} s"
    if value < 7200:
        return f"{value // 60} min {value % 60} s"
    return f"{value // 3600} h {value % 3600 // 60} min"


def _attrs(**attrs: object) -> str:
    return "".join(f' {k.replace("_", "-")}="{_e(v)}"' for k, v in attrs.items() if v is not None)


# -- the page -----------------------------------------------------------------------------


def _panel(name: str, title: str, body: str, note: str = "") -> str:
    return (
        f'<section class="panel" id="{name}-panel"><h2>{_e(title)}</h2>{note}'
        f'<div id="{name}" data-poll hx-get="{BASE}/panel/{name}" hx-trigger="{POLL}" '
        f'hx-swap="innerHTML">{body}</div></section>'
    )


def page(source: str, panels: dict[str, str]) -> str:
    config = json.dumps({"includeIndicatorStyles": False, "defaultSwapStyle": "innerHTML"})
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="htmx-config" content="{_e(config)}">
<title>strangler · migration dashboard</title>
<link rel="stylesheet" href="{BASE}/static/vendor/uPlot.min.css">
<link rel="stylesheet" href="{BASE}/static/dashboard.css">
<script src="{BASE}/static/vendor/htmx.min.js"></script>
<script src="{BASE}/static/vendor/uPlot.iife.min.js"></script>
<script src="{BASE}/static/dashboard.js" defer></script>
</head>
<body>
<header><h1>strangler <span>migration dashboard</span></h1>
<div id="meta" data-poll hx-get="{BASE}/panel/meta" hx-trigger="{POLL}">{panels["meta"]}</div>
</header>
<div id="action" aria-live="polite"></div>
<main>
{_panel("routes", "Route map", panels["routes"])}
<section class="panel" id="traffic-panel"><h2>Traffic per backend, last 15 minutes</h2>
<div id="charts" data-series="{BASE}/series"></div></section>
{_panel("rollouts", "Rollouts", panels["rollouts"])}
{_panel("data", "Data sync", panels["data"])}
{_panel("shadows", "Shadows", panels["shadows"])}
{_panel("audit", "Audit log", panels["audit"])}
</main>
<footer>source {_e(source)}</footer>
</body>
</html>
"""


def login(message: str = "") -> str:
    error = f'<p class="refused">{_e(message)}</p>' if message else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>strangler · sign in</title>
<style>body{{font:15px system-ui,sans-serif;margin:4rem auto;max-width:26rem}}
input{{width:100%;padding:.4rem;margin:.5rem 0}}.refused{{color:#b00020}}</style></head>
<body><h1>strangler dashboard</h1>
<p>The dashboard needs the facade's admin token (<code>facade.admin</code> in routing.yaml).</p>
{error}
<form method="post" action="{BASE}/login" id="login">
<label for="token">Admin token</label>
<input type="password" name="token" id="token" autocomplete="current-password" autofocus>
<button type="submit">Sign in</button></form></body></html>
"""


def meta(generation: int, pid: int, workers: int, reload_error: str | None) -> str:
    error = (
        f' · <span class="refused">reload refused: {_e(reload_error)}</span>'
        if reload_error
        else ""
    )
    shown = f"all {workers} workers" if workers > 1 else "1 worker"
    return (
        f'<span data-generation="{generation}">table generation {generation}</span> · '
        f"figures of {shown} · answered by pid {pid}{error}"
    )


# -- the route map ------------------------------------------------------------------------


def _match(route: dict[str, Any]) -> str:
    if route["default"]:
        return '<span class="muted">everything else</span>'
    parts = [f"<code>{_e(p)}</code>" for p in route["paths"]] or [
        '<span class="muted">any path</span>'
    ]
    methods = " ".join(route["methods"]) or "any method"
    headers = "".join(
        f'<div class="muted">{_e(name)}: {_e(" | ".join(values))}</div>'
        for name, values in route["headers"].items()
    )
    return f'{"<br>".join(parts)}<div class="muted">{_e(methods)}</div>{headers}'


def _buttons(route: dict[str, Any]) -> str:
    if route["fixed"] is not None:
        return ""
    name = _e(route["name"])
    return (
        f'<button class="act" data-act="shift" hx-get="{BASE}/action/shift/{name}" '
        f'hx-target="#action">Shift…</button>'
        f'<button class="act" data-act="promote" hx-get="{BASE}/action/promote/{name}" '
        f'hx-target="#action">Promote…</button>'
        f'<button class="act" data-act="rollback" hx-get="{BASE}/action/rollback/{name}" '
        f'hx-target="#action">Roll back…</button>'
    )


def routes(views: list[dict[str, Any]]) -> str:
    head = (
        "<thead><tr><th>#</th><th>route</th><th>match</th><th>owner</th><th>backend</th>"
        "<th>configured</th><th>observed (1 min)</th><th>req/s</th><th>errors</th>"
        "<th>p50</th><th>p99</th><th></th></tr></thead>"
    )
    bodies = []
    for route in views:
        backends = route["backends"] or [None]
        span = len(backends)
        rows = []
        for i, backend in enumerate(backends):
            cells = ""
            if i == 0:
                order = "default" if route["default"] else route["order"]
                title = _e(route["name"]) + (
                    ' <span class="tag">rollout</span>' if route["rollout"] else ""
                )
                owner_class = "owner " + ("split" if route["owner"] == "split" else "")
                cells += (
                    f'<td rowspan="{span}" class="order">{_e(order)}</td>'
                    f'<td rowspan="{span}" class="name">{title}</td>'
                    f'<td rowspan="{span}">{_match(route)}</td>'
                    f'<td rowspan="{span}" class="{owner_class.strip()}">{_e(route["owner"])}</td>'
                )
            if backend is None:
                fixed = route["fixed"]
                cells += (
                    f'<td colspan="7" class="muted">answers {_e(fixed)} itself (deny rule)</td>'
                )
            else:
                error_class = ' class="bad"' if (backend["error_rate"] or 0) >= 5 else ""
                cells += (
                    f'<td class="backend">{_e(backend["backend"])} '
                    f'<span class="muted">{_e(backend["kind"])}</span></td>'
                    f'<td class="configured" data-percent="{backend["configured"]:g}">'
                    f'<span class="bar" style="--w:{backend["configured"]:g}%"></span>'
                    f"{_pct(backend['configured'])}</td>"
                    f'<td class="observed"{_attrs(data_percent=backend["observed"])}>'
                    f"{_pct(backend['observed'])}</td>"
                    f'<td class="num">{_rate(backend["rate"])}</td>'
                    f'<td class="num"><span{error_class}>{_pct(backend["error_rate"], 2)}</span>'
                    "</td>"
                    f'<td class="num">{_ms(backend["p50"])}</td>'
                    f'<td class="num">{_ms(backend["p99"])}</td>'
                )
            if i == 0:
                cells += f'<td rowspan="{span}" class="buttons">{_buttons(route)}</td>'
            data_backend = _attrs(data_backend=backend["backend"] if backend else None)
            rows.append(f"<tr{data_backend}>{cells}</tr>")
        bodies.append(
            f'<tbody class="route" id="route-{_e(route["name"])}" data-route="{_e(route["name"])}">'
            + "".join(rows)
            + "</tbody>"
        )
    return f'<table class="routes">{head}{"".join(bodies)}</table>'


# -- rollouts -----------------------------------------------------------------------------


def _number(value: object) -> str:
    if isinstance(value, float | int):
        return f"{value:+.3g}"
    return _e(value)


def _verdicts(verdicts: Iterable[dict[str, Any]], kind: str) -> str:
    rows = []
    for v in verdicts:
        unit = _e(v.get("unit") or "")
        estimate = "—" if v.get("estimate") is None else f"{_number(v['estimate'])} {unit}"
        interval = v.get("interval")
        bounds = f"[{_number(interval[0])}, {_number(interval[1])}]" if interval else ""
        rows.append(
            f'<tr class="verdict" data-metric="{_e(v.get("metric"))}"'
            f' data-result="{_e(v.get("result"))}">'
            f"<td>{_e(kind)}</td><td>{_e(v.get('metric'))}</td>"
            f'<td class="result {_e(v.get("result"))}">{_e(v.get("result"))}</td>'
            f"<td class=num>{estimate}</td><td class=num>{bounds}</td>"
            f"<td>n {_e(v.get('canary_n', ''))} / {_e(v.get('baseline_n', ''))}</td>"
            f"<td>{_e(v.get('reason', ''))}</td></tr>"
        )
    return "".join(rows)


def _rollout_buttons(view: dict[str, Any]) -> str:
    if view["state"] in ("promoted", "rolled_back"):
        return ""
    route = _e(view["route"])
    wanted = ["resume"] if view["state"] == "paused" else ["pause"]
    return "".join(
        f'<button class="act" data-act="{c}" hx-get="{BASE}/action/rollout/{c}/{route}" '
        f'hx-target="#action">{c.capitalize()}…</button>'
        for c in [*wanted, "promote", "abort"]
    )


def rollouts(views: list[dict[str, Any]]) -> str:
    if not views:
        return (
            '<p class="muted">No rollout has run here '
            "(<code>strangler rollout start ROUTE</code>).</p>"
        )
    out = []
    for view in views:
        if "error" in view:
            out.append(f'<article class="rollout"><h3>{_e(view["route"])}</h3>'
                       f'<p class="refused">{_e(view["error"])}</p></article>')  # fmt: skip
            continue
        canary, baseline = view["to"], view["from"]
        weights = " → ".join(f"{w:g}" for w in view["weights"])
        configured = view["configured"]
        observed = view["observed"]
        sample = view["sample"]
        controller = (
            f"controller pid {view['controller']}"
            if view["controller"]
            else "no controller running"
        )
        lines = [
            f'<p><b class="state {_e(view["state"])}">{_e(view["state"])}</b> · '
            f'<span class="step">step {view["step"]}/{view["steps"]}</span> '
            f'<span class="muted">({_e(weights)} %)</span> · {_e(baseline)} → {_e(canary)} · '
            f"{_e(controller)}</p>",
            f"<p>weight {_e(canary)}: configured {_pct(configured.get(canary))}"
            + (f" · observed {_pct(observed.get(canary), 2)}" if observed else "")
            + (f" · AWS {_pct(view['actual'])}" if view.get("actual") is not None else "")
            + f" · time in step {_seconds(view.get('time_in_step'))}</p>",
        ]
        if sample.get("required") is not None:
            lines.append(
                f'<p class="sample">sample: canary {sample["canary"]} of {sample["required"]} '
                f"required · baseline {sample['baseline']} · at least"
                f" {_seconds(sample['min_time'])} "
                "in the step</p>"
            )
        table = _verdicts(view["verdicts"], "verdict") + _verdicts(view["gates"], "gate")
        if table:
            lines.append(
                '<table class="verdicts"><thead><tr><th></th><th>metric</th><th>result</th>'
                "<th>estimate</th><th>interval</th><th>canary / baseline</th><th>reason</th>"
                f"</tr></thead><tbody>{table}</tbody></table>"
            )
        if view.get("reason"):
            lines.append(f'<p>decision: <span class="reason">{_e(view["reason"])}</span></p>')
        if view.get("paused_reason") and view["state"] == "paused":
            lines.append(f'<p class="warn">paused: {_e(view["paused_reason"])}</p>')
        out.append(
            f'<article class="rollout" data-route="{_e(view["route"])}" '
            f'data-state="{_e(view["state"])}" data-step="{view["step"]}">'
            f"<h3>{_e(view['route'])} {_rollout_buttons(view)}</h3>{''.join(lines)}</article>"
        )
    return "".join(out)


# -- data, shadows, audit -----------------------------------------------------------------


def data(
    streams: list[dict[str, Any]],
    held: list[dict[str, Any]],
    error: str | None,
    age: float | None,
) -> str:
    if not streams:
        return '<p class="muted">No sync stream in this routing file.</p>'
    warnings = "".join(
        f'<p class="warn held">{_e(h.get("reason", ""))} — holds back step {h["step"]} of the '
        f"{_e(h['route'])} rollout</p>"
        for h in held
    )
    status = (
        f'<p class="refused">cannot read the streams: {_e(error)}</p>'
        if error
        else ("" if age is not None else '<p class="muted">reading…</p>')
    )
    rows = []
    for stream in streams:
        f = stream["figures"] or {}

        def cell(key: str, f: dict[str, Any] = f) -> str:
            value = f.get(key)
            return "—" if value is None else _e(value)

        lag = f.get("outbox_oldest_pending_age_s")
        dead = f.get("dead_letters") or 0
        rows.append(
            f'<tr data-stream="{_e(stream["name"])}"><td>{_e(stream["name"])}</td>'
            f"<td class=num>{'—' if lag is None else f'{float(lag):.1f} s'}</td>"
            f"<td class=num>{cell('outbox_pending')}</td><td class=num>{cell('queued')}</td>"
            f"<td class=num>{cell('in_flight')}</td>"
            f'<td class="num{" bad" if dead else ""}">{cell("dead_letters")}</td>'
            f"<td class=num>{cell('conflicts')}</td></tr>"
        )
    read = f'<p class="muted">read {age:.0f} s ago</p>' if age is not None and not error else ""
    return (
        warnings
        + status
        + '<table class="streams"><thead><tr><th>stream</th><th>lag (oldest unsent)</th>'
        "<th>backlog</th><th>queue</th><th>in flight</th><th>dead letters</th><th>conflicts</th>"
        f"</tr></thead><tbody>{''.join(rows)}</tbody></table>{read}"
    )


def shadows(
    views: list[dict[str, Any]] | None,
    error: str | None = None,
    age: float | None = 0.0,
) -> str:
    """Each shadowed route's comparison and its top differing JSON paths with an example
    pair; ``views`` None with ``age`` 0: the shadow module is not installed; with
    ``age`` None: nothing read yet."""
    if error:
        return f'<p class="refused">cannot read the shadow stores: {_e(error)}</p>'
    if views is None and age is None:
        return '<p class="muted">reading…</p>'
    if views is None:
        return (
            '<p class="muted">Shadow traffic is not part of this installation '
            "(<code>facade.shadow</code>): this panel shows each shadowed route's comparison "
            "summary where it is.</p>"
        )
    if not views:
        return '<p class="muted">No route has a shadow block.</p>'
    rows, details = [], []
    for view in views:
        route = view["route"]
        if view["error"]:
            rows.append(f'<tr><td>{_e(route)}</td><td colspan="7" class="refused">'
                        f'{_e(view["error"])}</td></tr>')  # fmt: skip
            continue
        s = view["summary"]
        noise = view.get("noise") or {}
        noise_rate = 100 * noise["differing"] / noise["compared"] if noise.get("compared") else None
        link = f"{BASE}/shadow/{quote(route, safe='')}"
        rows.append(
            f'<tr data-route="{_e(route)}"><td>{_e(route)}</td>'
            f"<td class=num>{_e(s.get('compared', '—'))}</td><td class=num>"
            f"{_e(s.get('differing', '—'))}</td>"
            "<td class=num>"
            f"{_pct(100 * s['difference_rate'] if 'difference_rate' in s else None, 2)}</td>"
            f'<td class=num title="{_e(noise.get("compared", 0))} noise pairs">'
            f"{_pct(noise_rate, 2)}</td>"
            f"<td class=num>{_e(s.get('dropped', '—'))}</td><td class=num>"
            f"{_e(s.get('errors', '—'))}</td>"
            f'<td><a href="{_e(link)}" target="_blank" rel="noopener">report</a></td></tr>'
        )
        if view.get("fields"):
            details.append(_shadow_fields(route, view["fields"]))
    return (
        '<table class="shadows"><thead><tr><th>route</th><th>compared</th><th>differing</th>'
        "<th>difference rate</th><th>noise rate</th><th>dropped</th><th>errors</th><th></th>"
        f"</tr></thead><tbody>{''.join(rows)}</tbody></table>{''.join(details)}"
        '<p class="muted">difference rate: pairs with a real difference, noise removed; '
        "noise rate: primary-vs-primary pairs that differ at all. Examples are stored "
        "redacted. In a terminal: <code>strangler shadow report ROUTE</code></p>"
    )


def _shadow_fields(route: str, fields: list[dict[str, Any]]) -> str:
    items = []
    for f in fields:
        verdict = "differs" if f["real"] else "noise"
        example = f.get("example")
        pair = ""
        if example:
            pair = (
                f'<div class="pair"><code>{_e(example["request"])}</code> at '
                f"<code>{_e(example['where'])}</code>"
                f'<pre class="primary">primary: {_e(example["primary"])}</pre>'
                f'<pre class="shadow">shadow:  {_e(example["shadow"])}</pre></div>'
            )
        items.append(
            f'<tr data-field="{_e(f["field"])}" class="{verdict}"><td><code>{_e(f["field"])}'
            f"</code></td><td>{_e(f['endpoint'])}</td>"
            f"<td class=num>{_pct(100 * f['rate'], 2)}</td>"
            f"<td class=num>{_pct(100 * f['noise_rate'], 2)}</td><td>{verdict}</td>"
            f"<td>{pair}</td></tr>"
        )
    return (
        f'<table class="shadow-fields" data-route="{_e(route)}"><caption>{_e(route)}: the '
        "top differing JSON paths</caption><thead><tr><th>path</th><th>endpoint</th>"
        "<th>differs in</th><th>noise</th><th>verdict</th><th>an example pair</th></tr>"
        f"</thead><tbody>{''.join(items)}</tbody></table>"
    )


def _weights(weights: dict[str, Any] | None) -> str:
    if not weights:
        return ""
    return ", ".join(f"{_e(b)} {p:g}%" for b, p in weights.items() if isinstance(p, int | float))


def _details(entry: dict[str, Any]) -> str:
    parts = []
    if "before" in entry or "after" in entry:
        parts.append(f"{_weights(entry.get('before'))} → {_weights(entry.get('after'))}")
    for key in ("share", "weight", "configured", "observed"):
        if isinstance(entry.get(key), int | float):
            parts.append(f"{key} {entry[key]:g} %")
    if entry.get("decision"):
        parts.append(f"decision {_e(entry['decision'])}")
    for v in entry.get("verdicts") or []:
        if isinstance(v, dict):
            parts.append(f"{_e(v.get('metric'))} {_e(v.get('result'))}")
    if entry.get("reason"):
        parts.append(f'<span class="reason">{_e(entry["reason"])}</span>')
    return " · ".join(parts)


def audit(entries: list[dict[str, Any]]) -> str:
    if not entries:
        return '<p class="muted">Nothing recorded yet.</p>'
    rows = []
    for entry in entries:
        at = str(entry.get("at", ""))
        with_time = at[11:23] if len(at) > 19 else at
        rows.append(
            f'<tr data-action="{_e(entry.get("action", ""))}"'
            f' data-route="{_e(entry.get("route", ""))}">'
            f'<td title="{_e(at)}">{_e(with_time)}</td><td>{_e(entry.get("who", ""))}</td>'
            f"<td>{_e(entry.get('action', ''))}</td><td>{_e(entry.get('route', ''))}</td>"
            f"<td>{_details(entry)}</td></tr>"
        )
    return (
        '<table class="audit"><thead><tr><th>at (UTC)</th><th>who</th><th>action</th>'
        f"<th>route</th><th>numbers</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


# -- actions ------------------------------------------------------------------------------


def _cancel() -> str:
    return (
        f'<button type="button" class="cancel" hx-get="{BASE}/action/cancel" '
        'hx-target="#action">Cancel</button>'
    )


def shift_form(route: str, targets: dict[str, float], backends: list[str]) -> str:
    non_first = [b for b in targets if targets[b] < 100] or list(targets)
    chosen = next((b for b in non_first if b != next(iter(targets), None)), non_first[-1])
    options = "".join(
        f'<option value="{_e(b)}"{" selected" if b == chosen else ""}>{_e(b)}</option>'
        for b in backends
    )
    current = ", ".join(f"{_e(b)} {p:g}%" for b, p in targets.items())
    return (
        f'<div class="dialog" data-action="shift" data-route="{_e(route)}">'
        f"<h3>Shift {_e(route)}</h3><p class=muted>now: {current}</p>"
        f'<form hx-post="{BASE}/preview/shift/{_e(route)}" hx-target="#action">'
        f'<label>give <select name="to">{options}</select></label> '
        f'<label><input name="percent" type="number" min="0" max="100" step="0.1" required '
        f'value="{targets.get(chosen, 0):g}"> %</label> '
        f'<button type="submit" class="primary">Review…</button> {_cancel()}</form></div>'
    )


def confirmation(preview: Preview) -> str:
    names = list(dict.fromkeys([*preview.before, *preview.after]))
    rows = "".join(
        f'<tr data-backend="{_e(b)}"><td>{_e(b)}</td>'
        f'<td class="before" data-percent="{preview.before.get(b, 0):g}">'
        f"{preview.before.get(b, 0):g} %</td>"
        f'<td class="after" data-percent="{preview.after.get(b, 0):g}">'
        f"{preview.after.get(b, 0):g} %</td></tr>"
        for b in names
    )
    fields = {**preview.fields, **{f"after.{b}": f"{p:g}" for b, p in preview.after.items()}}
    hidden = "".join(
        f'<input type="hidden" name="{_e(k)}" value="{_e(v)}">' for k, v in fields.items()
    )
    target = preview.action.replace(".", "/")
    return (
        f'<div class="dialog confirm" data-action="{_e(preview.action)}"'
        f' data-route="{_e(preview.route)}">'
        f"<h3>Confirm: {_e(preview.description)}</h3>"
        '<table class="before-after"><thead><tr><th>backend</th><th>before</th><th>after</th></tr>'
        f"</thead><tbody>{rows}</tbody></table>"
        f'<form hx-post="{BASE}/apply/{_e(target)}/{_e(preview.route)}" hx-target="#action">'
        f"{hidden}"
        f'<button type="submit" class="danger confirm-button">Confirm</button> {_cancel()}</form>'
        "</div>"
    )


def done(change: Change | None, message: str) -> str:
    when = datetime.now(UTC).strftime("%H:%M:%S")
    changed = change is None or change.changed
    return (
        f'<div class="dialog result ok" data-changed="{str(changed).lower()}">'
        f"<p>{_e(message)}{'' if changed else ' (already so: nothing written)'}</p>"
        f'<p class="muted">{when} UTC · in the audit log</p>'
        f"{_cancel().replace('Cancel', 'Close')}</div>"
    )


def refused(reason: str) -> str:
    return (
        '<div class="dialog result refused-box"><p class="refused"><b>Refused:</b>'
        f" {_e(reason)}</p>"
        f"{_cancel().replace('Cancel', 'Close')}</div>"
    )


__all__ = [
    "audit",
    "confirmation",
    "data",
    "done",
    "login",
    "meta",
    "page",
    "refused",
    "rollouts",
    "routes",
    "shadows",
    "shift_form",
]
