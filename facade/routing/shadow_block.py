"""A route's ``shadow:`` block: copies of its requests to another backend, compared.

::

    routes:
      - name: orders
        match: {paths: ["/api/orders", "/api/orders/*"]}
        targets: {monolith: 100}
        shadow:
          to: orders                  # the backend that receives the copies
          percent: 100                # share of requests copied (by stable_key if any)
          methods: [GET, HEAD, OPTIONS]   # the default; a write needs `writes: true`
          writes: false               # copies of writes carry X-Strangler-Shadow: write
          noise: 10                   # percent of safe copies also sent to the primary
          max_concurrent: 32          # shadows in flight per worker; more are dropped
          timeout: 5                  # seconds for a shadow's whole answer
          max_body_bytes: 262144      # a larger request or answer is not compared
          compare:
            headers: [content-type]   # response headers compared (status always is)
            ignore: [$..request_id]   # JSON paths never compared
            sets: [$.tags]            # arrays compared as sets, not by position
            normalize:                # known to differ by nature
              $..created_at: timestamp
              $.id: uuid
              $.total: {number: 0.01} # equal within 0.01
          thresholds: {relative: 20, absolute: 0.03}   # percent (Diffy's defaults)
          redact: [address, phone]    # more names never stored (beside the built-in ones)
          store: var/shadow.sqlite3   # relative to this file
          keep: 10000                 # comparisons kept per route, the latest

Writes are never mirrored by surprise: a method outside GET, HEAD and OPTIONS in
``methods`` is refused unless ``writes: true`` says the backend knows what the header
asks of it (README, "Shadowing a route").
"""

from __future__ import annotations

from typing import Any

from ruamel.yaml.comments import CommentedMap

from facade.routing import patterns
from facade.routing.checker import Checker, show
from facade.routing.model import (
    SAFE_METHODS,
    SHARE_TOTAL,
    Backend,
    NormalizeKind,
    Normalizer,
    Shadow,
    parse_share,
)
from facade.shadow import jsonpath

SHADOW_KEYS = (
    "to", "percent", "methods", "writes", "noise", "max_concurrent", "timeout",
    "max_body_bytes", "compare", "thresholds", "redact", "store", "keep",
)  # fmt: skip
COMPARE_KEYS = ("headers", "ignore", "sets", "normalize")
# key → (lowest, highest, whole number?)
RANGES: dict[str, tuple[float, float, bool]] = {
    "max_concurrent": (1, 10_000, True),
    "timeout": (0.01, 900, False),
    "max_body_bytes": (1, 10 * 1024 * 1024, True),
    "keep": (100, 10_000_000, True),
}
THRESHOLDS = {"relative": (0.0, 10_000.0), "absolute": (0.0, 100.0)}  # percent


def _percent(check: Checker, node: CommentedMap, key: str, path: str) -> int | None:
    share = parse_share(node[key])
    if share is None:
        check.at(node, key, path, f"{show(node[key])}: a percentage from 0 to 100 in steps of 0.1")
    return share


def _names(check: Checker, node: CommentedMap, key: str, path: str) -> list[str] | None:
    value = node[key]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        check.at(node, key, path, f"{show(value)}: a list of names")
        return None
    return [str(v) for v in value]


def _paths(check: Checker, node: CommentedMap, key: str, path: str) -> tuple[str, ...]:
    values = _names(check, node, key, path)
    if values is None:
        return ()
    for value in values:
        wrong = jsonpath.problem(value)
        if wrong:
            check.at(node, key, path, f"{value!r}: {wrong}")
    return tuple(values)


def _normalize(check: Checker, node: CommentedMap, path: str) -> tuple[Normalizer, ...]:
    spec = node["normalize"]
    if not isinstance(spec, CommentedMap):
        check.at(node, "normalize", path, f"{show(spec)}: a mapping of JSON path → kind")
        return ()
    kinds = ", ".join(k.value for k in NormalizeKind)
    found: list[Normalizer] = []
    for where, how in spec.items():
        at = f"{path}.{where}"
        wrong = jsonpath.problem(str(where))
        if wrong:
            check.at(spec, where, at, f"{str(where)!r}: {wrong}", value=False)
            continue
        tolerance: Any = 0.0
        if isinstance(how, CommentedMap) and list(how) == ["number"]:
            tolerance = how["number"]
            how = "number"
        try:
            kind = NormalizeKind(how)
        except ValueError:
            check.at(spec, where, at, f"{show(how)}: one of {kinds}, or {{number: TOLERANCE}}")
            continue
        if isinstance(tolerance, bool) or not isinstance(tolerance, int | float) or tolerance < 0:
            check.at(spec, where, at, f"tolerance {tolerance!r}: a number, 0 or more")
            continue
        found.append(Normalizer(str(where), kind, float(tolerance)))
    return tuple(found)


def shadow(
    check: Checker, body: CommentedMap, path: str, backends: dict[str, Backend]
) -> Shadow | None:
    """The route's ``shadow:`` block, or None (absent, or after naming its problems)."""
    path = f"{path}.shadow"
    node = check.mapping(body["shadow"], body, "shadow", path, SHADOW_KEYS)
    if node is None:
        return None
    kw: dict[str, Any] = {}
    target = node.get("to")
    if target not in backends:
        known = ", ".join(backends) or "none"
        at = (node, "to") if "to" in node else (body, "shadow")
        check.at(*at, f"{path}.to", f"{show(target)}: the backend receiving copies; {known}")
    else:
        kw["backend"] = str(target)
    for key, default in (("percent", "share"), ("noise", "noise")):
        if key in node:
            share = _percent(check, node, key, f"{path}.{key}")
            if share is not None:
                kw[default] = share
    writes = node.get("writes", False)
    if not isinstance(writes, bool):
        check.at(node, "writes", f"{path}.writes", f"{show(writes)}: true or false")
        writes = False
    kw["writes"] = writes
    if "methods" in node:
        methods = _names(check, node, "methods", f"{path}.methods") or []
        for method in methods:
            wrong = patterns.method_problem(method)
            if wrong:
                check.at(node, "methods", f"{path}.methods", f"{method!r} {wrong}")
            elif method not in SAFE_METHODS and not writes:
                check.at(
                    node, "methods", f"{path}.methods",
                    f"{method} is a write: it is mirrored only with `writes: true`, once the "
                    f"backend {kw.get('backend', target)!r} answers X-Strangler-Shadow: write "
                    "without side effects",
                )  # fmt: skip
        kw["methods"] = tuple(dict.fromkeys(m.upper() for m in methods))
    for key, (low, high, whole) in RANGES.items():
        if key not in node:
            continue
        value = node[key]
        kinds = int if whole else int | float
        if isinstance(value, bool) or not isinstance(value, kinds) or not low <= value <= high:
            what = "a whole number" if whole else "seconds"
            check.at(node, key, f"{path}.{key}", f"{value!r}: {what} from {low:g} to {high:g}")
        else:
            kw[key] = value if whole else float(value)
    if "compare" in node:
        where = f"{path}.compare"
        compare = check.mapping(node["compare"], node, "compare", where, COMPARE_KEYS)
        if compare is not None:
            if "headers" in compare:
                names = _names(check, compare, "headers", f"{where}.headers") or []
                for name in names:
                    wrong = patterns.header_name_problem(name)
                    if wrong:
                        check.at(compare, "headers", f"{where}.headers", f"{name!r} {wrong}")
                kw["headers"] = tuple(n.lower() for n in names)
            for key in ("ignore", "sets"):
                if key in compare:
                    kw[key] = _paths(check, compare, key, f"{where}.{key}")
            if "normalize" in compare:
                kw["normalize"] = _normalize(check, compare, f"{where}.normalize")
    if "thresholds" in node:
        where = f"{path}.thresholds"
        given = check.mapping(node["thresholds"], node, "thresholds", where, tuple(THRESHOLDS))
        for key, (low, high) in THRESHOLDS.items():
            if given is None or key not in given:
                continue
            value = given[key]
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not (low <= value <= high)
            ):
                message = f"{value!r}: percent from {low:g} to {high:g}"
                check.at(given, key, f"{where}.{key}", message)
            else:
                kw[key] = float(value) / 100
    if "redact" in node:
        names = _names(check, node, "redact", f"{path}.redact") or []
        kw["redact"] = tuple(n.lower() for n in names)
    if "store" in node:
        store = node["store"]
        if not isinstance(store, str) or not store.strip():
            check.at(node, "store", f"{path}.store", f"{show(store)}: a file path")
        else:
            kw["store"] = store
    if "backend" not in kw:
        return None
    if kw.get("share", SHARE_TOTAL) and not kw.get("methods", SAFE_METHODS):
        check.at(node, "methods", f"{path}.methods", "at least one method")
    return Shadow(**kw)


__all__ = ["shadow"]
