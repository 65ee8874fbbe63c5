"""The ``faults:`` block of a backend: what the local facade injects into its requests.

```yaml
backends:
  orders:
    kind: lambda
    faults:
      abort: {percent: 10, status: 503}   # answered by the facade in the backend's name
      delay: {percent: 50, seconds: 0.2}  # held this long before it goes on
```

Percentages take steps of 0.1 from 0 to 100 (like a target's weight); ``status`` is an
HTTP status from 200 to 599 (default 503); ``seconds`` is at least 0 and less than the
timeout the facade gives that backend (``facade.timeouts.read``, or ``.lambda`` for an
in-process Lambda handler), so a delayed request still fits in the time a client of the
facade is promised. A block whose percentages are all 0 injects nothing and reads as no
faults. Faults are a local testing aid: nothing derived for AWS reads them.
"""

from __future__ import annotations

from typing import Any

from ruamel.yaml.comments import CommentedMap

from facade.routing.checker import Checker, show
from facade.routing.model import SHARE_TOTAL, Faults, Timeouts, parse_share

FAULT_KEYS = ("abort", "delay")
STATUS_MIN, STATUS_MAX = 200, 599


def faults(
    check: Checker, body: CommentedMap, path: str, timeouts: Timeouts, *, in_facade: bool
) -> Faults | None:
    """The backend's ``faults`` (None if it has none or they inject nothing)."""
    if "faults" not in body or body["faults"] is None:
        return None
    where = f"{path}.faults"
    node = check.mapping(body["faults"], body, "faults", where, FAULT_KEYS)
    if node is None:
        return None
    kw: dict[str, Any] = {}
    if "abort" in node:
        abort = check.mapping(node["abort"], node, "abort", f"{where}.abort", ("percent", "status"))
        if abort is not None:
            kw["abort_share"] = _share(check, node, abort, "abort", where)
            status = abort.get("status", 503)
            if (
                isinstance(status, bool)
                or not isinstance(status, int)
                or not STATUS_MIN <= status <= STATUS_MAX
            ):
                check.at(
                    abort,
                    "status",
                    f"{where}.abort.status",
                    f"{show(status)}: an HTTP status from {STATUS_MIN} to {STATUS_MAX}",
                )
            else:
                kw["abort_status"] = status
    if "delay" in node:
        delay = check.mapping(
            node["delay"], node, "delay", f"{where}.delay", ("percent", "seconds")
        )
        if delay is not None:
            kw["delay_share"] = _share(check, node, delay, "delay", where)
            limit, name = (timeouts.lambda_, "lambda") if in_facade else (timeouts.read, "read")
            seconds = delay.get("seconds")
            if (
                isinstance(seconds, bool)
                or not isinstance(seconds, int | float)
                or not 0 <= seconds < limit
            ):
                check.at(
                    delay if "seconds" in delay else node,
                    "seconds" if "seconds" in delay else "delay",
                    f"{where}.delay.seconds",
                    f"{show(seconds)}: seconds, at least 0 and less than facade.timeouts."
                    f"{name} ({limit:g})",
                )
            else:
                kw["delay_seconds"] = float(seconds)
    found = Faults(**kw)
    return found if found.abort_share or found.delay_share else None


def _share(check: Checker, node: CommentedMap, block: CommentedMap, key: str, where: str) -> int:
    if "percent" not in block:
        check.at(node, key, f"{where}.{key}.percent", "is required: the percent of requests hit")
        return 0
    share = parse_share(block["percent"])
    if share is None:
        check.at(
            block,
            "percent",
            f"{where}.{key}.percent",
            f"{show(block['percent'])}: a percentage from 0 to 100 in steps of 0.1",
        )
        return 0
    assert 0 <= share <= SHARE_TOTAL
    return share


__all__ = ["faults"]
