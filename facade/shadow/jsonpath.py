"""JSON path patterns, as routing.yaml's ``shadow.compare`` writes them, and the paths
the comparison reports.

A reported path names one value of a JSON document, array positions collapsed to
``[*]`` so that all items of a list count as one field: ``$.items[*].total``. Keys
outside ``[A-Za-z0-9_-]`` are written as quoted members: ``$["odd key"]``.

A pattern is such a path with two wildcards: ``*`` for any one key (``$.*.id``) and
``..`` for any depth (``$..updated_at``: that key anywhere). A pattern matches a path
and everything below it (``$.meta`` covers ``$.meta.request_id``).
"""

from __future__ import annotations

import json
import re
from functools import lru_cache

PLAIN_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
_SEGMENT = r'(?:\.\.?(?:[A-Za-z0-9_-]+|\*)|\[\*\]|\["(?:[^"\\]|\\.)*"\])'
PATTERN = re.compile(rf"^\$(?:{_SEGMENT})*$")
_TOKEN = re.compile(_SEGMENT)
_ANY_KEY = r'(?:\.[A-Za-z0-9_-]+|\["(?:[^"\\]|\\.)*"\])'
_ANY_STEP = rf"(?:{_ANY_KEY}|\[\*\])"


def member(path: str, key: str) -> str:
    """The path of ``key`` in the object at ``path``."""
    return f"{path}.{key}" if PLAIN_KEY.match(key) else f"{path}[{json.dumps(key)}]"


def item(path: str) -> str:
    """The path of the items of the array at ``path``."""
    return f"{path}[*]"


def problem(pattern: str) -> str | None:
    """Why ``pattern`` is not a JSON path pattern, or None."""
    if PATTERN.match(pattern):
        return None
    return (
        "a JSON path from $: .key, .* (any key), ..key (at any depth), [*] (any item), "
        "e.g. $.items[*].updated_at or $..request_id"
    )


@lru_cache(maxsize=1024)
def compile_pattern(pattern: str) -> re.Pattern[str]:
    parts = [r"^\$"]
    for token in _TOKEN.findall(pattern[1:]):
        if token.startswith(".."):
            rest = token[2:]
            tail = _ANY_KEY if rest == "*" else re.escape(member("", rest))
            parts.append(f"{_ANY_STEP}*{tail}")
        elif token == ".*":  # noqa: S105 - a path step
            parts.append(_ANY_KEY)
        else:
            parts.append(re.escape(token))
    parts.append(r"(?=$|[.\[])")
    return re.compile("".join(parts))


def matches(patterns: tuple[str, ...], path: str) -> bool:
    """Whether ``path`` is, or is below, a path one of ``patterns`` names."""
    return any(compile_pattern(p).match(path) for p in patterns)


__all__ = ["PATTERN", "compile_pattern", "item", "matches", "member", "problem"]
