"""One canonical form of the request path, for the route decision and the backend alike.

A path that could be read two ways is a way around a route (``/api/x/../orders`` routed as
``/api/x/*`` but served as ``/api/orders``). So before matching: percent-encoded
unreserved characters are decoded, ``//`` runs collapse to ``/``, ``.`` and ``..``
segments are resolved (RFC 3986, 5.2.4), other escapes get upper-case hex; and paths that
hide a separator — an encoded ``/``, ``\\`` or ``.``, a literal ``\\``, a NUL or other
control character, or ``..`` above the root — are refused with 400. The backend then
receives exactly the path the route was chosen for.
"""

from __future__ import annotations

import re

_SUSPECT = re.compile(r"%|//|/\.|\\|[\x00-\x1f\x7f]")
_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_~")
_FORBIDDEN_ESCAPES = frozenset({"2F", "5C", "2E", "00"})


class BadPath(ValueError):
    """The path cannot be routed safely; answer 400 with this message."""


def _unescape(match: re.Match[str]) -> str:
    hex_digits = match.group(1).upper()
    if hex_digits in _FORBIDDEN_ESCAPES:
        raise BadPath(f"encoded '%{hex_digits}' is not allowed in a path")
    char = chr(int(hex_digits, 16))
    return char if char in _UNRESERVED else f"%{hex_digits}"


def normalize_path(path: str) -> str:
    """The canonical path; raises ``BadPath`` for paths that cannot be routed safely."""
    if not path.startswith("/"):
        raise BadPath("the path must start with '/'")
    if _SUSPECT.search(path) is None:
        return path  # the common case: nothing to do
    if "\\" in path:
        raise BadPath("'\\' is not allowed in a path")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in path):
        raise BadPath("control characters are not allowed in a path")
    if "%" in path:
        if re.search(r"%(?![0-9A-Fa-f]{2})", path):
            raise BadPath("'%' must start a two-digit escape")
        path = _ESCAPE.sub(_unescape, path)
    segments: list[str] = []
    parts = path.split("/")[1:]
    for index, segment in enumerate(parts):
        last = index == len(parts) - 1
        if segment == "..":
            if not segments:
                raise BadPath("'..' climbs above the root")
            segments.pop()
            if last:
                segments.append("")
        elif segment == ".":
            if last:
                segments.append("")
        elif segment or last:
            segments.append(segment)
    return "/" + "/".join(segments)
