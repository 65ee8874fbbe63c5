"""One pair of answers → the fields in which they differ.

A field is the status (``status``), a chosen response header (``header:NAME``), or a
value of a JSON body named by its path with array positions collapsed
(``$.items[*].total``, ``facade.shadow.jsonpath``); a body that is not JSON is one field,
``body``, compared by digest. JSON is compared structurally: objects key by key, arrays
by position (or as multisets where ``compare.sets`` says so), numbers by value (``1``
equals ``1.0``, never ``true``). Declared ``ignore`` paths are skipped, declared
normalisers make values equal that differ by nature (any two timestamps, any two UUIDs,
numbers within a tolerance). Whether a difference is real or noise is decided later,
over many pairs (``facade.shadow.noise``).

``endpoint`` groups requests for the report: the method and the path with its ids
collapsed (``GET /api/orders/{id}/``).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple

from facade.routing.model import NormalizeKind, Normalizer, Shadow
from facade.shadow import jsonpath

FRAGMENT = 240  # characters of a value kept as an example
MAX_FIELDS = 50  # differing fields recorded per pair; the rest are counted as one
MORE = "(more fields)"
_UUID = re.compile(r"^[0-9a-fA-F]{8}(?:-?[0-9a-fA-F]{4}){3}-?[0-9a-fA-F]{12}$")
_ID_SEGMENT = re.compile(
    r"^(?:\d+|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    r"|[0-9a-fA-F]{16,}|(?=[A-Za-z0-9_-]{20,}$)(?=.*\d)[A-Za-z0-9_-]+)$"
)
_MISSING = object()


class Answer(NamedTuple):  # a tuple: cheap to build, one per answer compared
    status: int
    headers: tuple[tuple[str, str], ...]  # lower-case names, in order
    body: bytes

    def header(self, name: str) -> str:
        return ", ".join(v for n, v in self.headers if n == name)


@dataclass(frozen=True, slots=True)
class Difference:
    field: str  # the collapsed path: what is counted
    where: str  # the exact path of this example ($.items[2].total)
    primary: str  # the differing fragments, as JSON text (truncated)
    other: str


def endpoint(method: str, path: str) -> str:
    """``GET /api/orders/{id}/``: the path with numbers, UUIDs and long tokens collapsed."""
    parts = ["{id}" if _ID_SEGMENT.match(p) else p for p in path.split("/")]
    return f"{method} {'/'.join(parts)}"


def _fragment(value: Any) -> str:
    if value is _MISSING:
        return "(absent)"
    text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= FRAGMENT else text[: FRAGMENT - 1] + "…"


def _is_json(answer: Answer) -> bool:
    media = answer.header("content-type").split(";")[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


def _number(value: Any) -> Decimal | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float | str):
        try:
            return Decimal(str(value))
        except InvalidOperation:
            return None
    return None


def _timestamp(value: Any) -> bool:
    if not isinstance(value, str) or len(value) < 10:
        return False
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def _equal_normalized(rule: Normalizer, a: Any, b: Any) -> bool | None:
    """True/False when the normaliser decides, None when it does not apply."""
    if rule.kind is NormalizeKind.TIMESTAMP:
        return True if _timestamp(a) and _timestamp(b) else None
    if rule.kind is NormalizeKind.UUID:
        both = isinstance(a, str) and isinstance(b, str) and _UUID.match(a) and _UUID.match(b)
        return True if both else None
    x, y = _number(a), _number(b)
    if x is None or y is None:
        return None
    return abs(x - y) <= Decimal(str(rule.tolerance))


class _Walk:
    def __init__(self, rules: Shadow) -> None:
        self.rules = rules
        self.found: dict[str, Difference] = {}

    def differ(self, field: str, where: str, a: Any, b: Any) -> None:
        if field in self.found:
            return
        if len(self.found) >= MAX_FIELDS:
            field = MORE
            if field in self.found:
                return
        self.found[field] = Difference(field, where, _fragment(a), _fragment(b))

    def value(self, a: Any, b: Any, field: str, where: str) -> None:
        rules = self.rules
        if rules.ignore and jsonpath.matches(rules.ignore, field):
            return
        for rule in rules.normalize:
            if jsonpath.compile_pattern(rule.path).match(field):
                decided = _equal_normalized(rule, a, b)
                if decided is not None:
                    if not decided:
                        self.differ(field, where, a, b)
                    return
        if isinstance(a, dict) and isinstance(b, dict):
            for key in sorted(a.keys() | b.keys()):
                x, y = a.get(key, _MISSING), b.get(key, _MISSING)
                child, exact = jsonpath.member(field, key), jsonpath.member(where, key)
                if x is _MISSING or y is _MISSING:
                    if not (rules.ignore and jsonpath.matches(rules.ignore, child)):
                        self.differ(child, exact, x, y)
                else:
                    self.value(x, y, child, exact)
        elif isinstance(a, list) and isinstance(b, list):
            if rules.sets and jsonpath.matches(rules.sets, field):
                if sorted(map(_canonical, a)) != sorted(map(_canonical, b)):
                    self.differ(field, where, a, b)
                return
            child = jsonpath.item(field)
            for index in range(max(len(a), len(b))):
                exact = f"{where}[{index}]"
                if index >= len(a) or index >= len(b):
                    x = a[index] if index < len(a) else _MISSING
                    y = b[index] if index < len(b) else _MISSING
                    self.differ(child, exact, x, y)
                    break
                self.value(a[index], b[index], child, exact)
        elif not _same_scalar(a, b):
            self.differ(field, where, a, b)


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def _same_scalar(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    return type(a) is type(b) and a == b


def _text(body: bytes) -> str:
    text = body[:FRAGMENT].decode("utf-8", "replace")
    digest = hashlib.sha256(body).hexdigest()[:16]
    return json.dumps(f"sha256:{digest} {len(body)} bytes: {text}", ensure_ascii=False)


def compare(primary: Answer, other: Answer, rules: Shadow) -> list[Difference]:
    """The fields in which ``other`` differs from ``primary``, each once, with an example."""
    walk = _Walk(rules)
    if primary.status != other.status:
        walk.differ("status", "status", primary.status, other.status)
    for name in rules.headers:
        a, b = primary.header(name), other.header(name)
        if a != b:
            walk.differ(f"header:{name}", f"header:{name}", a or _MISSING, b or _MISSING)
    if primary.body == other.body:
        return list(walk.found.values())
    parsed: list[Any] = []
    for answer in (primary, other):
        if not _is_json(answer):
            break
        try:
            parsed.append(json.loads(answer.body))
        except ValueError:
            break
    if len(parsed) == 2:
        walk.value(parsed[0], parsed[1], "$", "$")
    else:
        found = walk.found
        found.setdefault("body", Difference("body", "body", _text(primary.body), _text(other.body)))
    return list(walk.found.values())


def fields(differences: Sequence[Difference]) -> list[str]:
    return [d.field for d in differences]


__all__ = ["Answer", "Difference", "compare", "endpoint", "fields"]
