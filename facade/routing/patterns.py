"""ALB wildcard patterns and their limits, compiled once into regular expressions.

ALB semantics (Elastic Load Balancing API reference, PathPatternConfig and
HttpHeaderConditionConfig): ``*`` matches zero or more characters (``/`` included),
``?`` exactly one; a path pattern is compared case-sensitively with the path only
(never the query string); header values are compared case-insensitively.
"""

from __future__ import annotations

import re
from functools import lru_cache

PATH_MAX = 128
HEADER_NAME_MAX = 40
HEADER_VALUE_MAX = 128
METHOD_MAX = 40
# Characters ALB accepts in a path pattern: A-Z a-z 0-9 _ - . $ / ~ " ' @ : + & * ?
PATH_CHARS = re.compile(r"""^[A-Za-z0-9_\-.$/~"'@:+&*?]+$""")
# RFC 7230 token characters for header names.
TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
METHOD = re.compile(r"^[A-Z_\-]+$")
# Visible ASCII only, as ALB rules do.
VISIBLE_ASCII = re.compile(r"^[\x20-\x7e]*$")


def wildcards(pattern: str) -> int:
    return pattern.count("*") + pattern.count("?")


@lru_cache(maxsize=4096)
def compile_wildcard(pattern: str, ignore_case: bool = False) -> re.Pattern[str]:
    """``*`` → any run of characters, ``?`` → one character, everything else literal."""
    parts = []
    for char in pattern:
        if char == "*":
            parts.append(".*")
        elif char == "?":
            parts.append(".")
        else:
            parts.append(re.escape(char))
    flags = re.DOTALL | (re.IGNORECASE if ignore_case else 0)
    return re.compile("".join(parts), flags)


def literal_prefix(pattern: str) -> str:
    """The part of a pattern before its first wildcard."""
    cut = len(pattern)
    for wildcard in "*?":
        index = pattern.find(wildcard)
        if index != -1:
            cut = min(cut, index)
    return pattern[:cut]


def path_pattern_problem(pattern: str) -> str | None:
    """Why ALB would refuse this path pattern, or None."""
    if not pattern:
        return "must not be empty"
    if len(pattern) > PATH_MAX:
        return f"is {len(pattern)} characters long; ALB allows at most {PATH_MAX}"
    if not pattern.startswith("/") and not pattern.startswith("*"):
        return "must start with '/' (or a wildcard)"
    if not PATH_CHARS.match(pattern):
        bad = sorted({c for c in pattern if not PATH_CHARS.match(c)})
        return (
            f"contains {', '.join(repr(c) for c in bad)}; ALB allows A-Z a-z 0-9 "
            """_ - . $ / ~ " ' @ : + & and the wildcards * ?"""
        )
    return None


def header_name_problem(name: str) -> str | None:
    if not name:
        return "must not be empty"
    if len(name) > HEADER_NAME_MAX:
        return f"is {len(name)} characters long; ALB allows at most {HEADER_NAME_MAX}"
    if not TOKEN.match(name) or "*" in name or "?" in name:
        return "must be an RFC 7230 token without wildcards"
    if name.lower() == "host":
        return "cannot be Host: ALB routes on the host with a host-header condition"
    return None


def header_value_problem(value: str) -> str | None:
    if not value:
        return "must not be empty"
    if len(value) > HEADER_VALUE_MAX:
        return f"is {len(value)} characters long; ALB allows at most {HEADER_VALUE_MAX}"
    if not VISIBLE_ASCII.match(value):
        return "must be visible ASCII characters"
    return None


def method_problem(method: str) -> str | None:
    if len(method) > METHOD_MAX or not METHOD.match(method):
        return "must be upper-case letters, '-' or '_' (ALB compares methods case-sensitively)"
    return None
