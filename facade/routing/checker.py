"""Collecting the problems of a routing file with their line and column.

Every check of the loader reports through a ``Checker``, so a file with several
mistakes is rejected once, with all of them, each as ``file:line:col: key: message``.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from facade.exceptions import Problem

# Names of backends, routes and sync streams: they become AWS resource names.
NAME = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?$")
# "module:function": set-up hooks, a Lambda target's SQS handler
CALLABLE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


@dataclass
class Checker:
    """Collects problems with their positions while the file is read."""

    file: str
    problems: list[Problem] = field(default_factory=list)

    def at(self, node: Any, key: Any, path: str, message: str, *, value: bool = True) -> None:
        line, column = position(node, key, value=value)
        self.problems.append(Problem(self.file, line, column, path, message))

    def mapping(
        self, node: Any, parent: Any, key: Any, path: str, allowed: tuple[str, ...]
    ) -> CommentedMap | None:
        if not isinstance(node, CommentedMap):
            self.at(parent, key, path, f"must be a mapping, got {show(node)}")
            return None
        for name in node:
            if name not in allowed:
                hint = difflib.get_close_matches(str(name), allowed, n=1)
                suggestion = f"; did you mean {hint[0]!r}?" if hint else ""
                self.at(
                    node,
                    name,
                    f"{path}.{name}",
                    f"unknown key; allowed: {', '.join(allowed)}{suggestion}",
                    value=False,
                )
        return node


def position(node: Any, key: Any, *, value: bool) -> tuple[int, int]:
    lc = getattr(node, "lc", None)
    if lc is None:
        return (1, 1)
    try:
        if isinstance(node, CommentedSeq):
            line, column = lc.item(key)
        elif value:
            line, column = lc.value(key)
        else:
            line, column = lc.key(key)
    except (KeyError, IndexError, TypeError):
        line, column = lc.line, lc.col
    return (int(line) + 1, int(column) + 1)


def show(value: Any) -> str:
    if isinstance(value, CommentedMap):
        return "a mapping"
    if isinstance(value, CommentedSeq):
        return "a list"
    return repr(value)
