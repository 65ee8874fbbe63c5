"""What the analysis reads and what it says: counts per arm, and verdicts.

An *arm* is one backend of the route under analysis: the baseline (the backend the
route moves away from, usually the monolith) or the canary (the plan's ``to``). A
provider reports **cumulative** counters per arm; the controller turns two readings
into the increments of one interval (a ``Window``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

# upper bounds (seconds) of the facade's latency histogram: at most 20 % apart from 1 ms
# to 10 s (a latency check judges no finer than its buckets), then 15, 20, 30 s and +Inf
_DECADE = (1, 1.2, 1.4, 1.6, 1.8, 2, 2.3, 2.6, 3, 3.5, 4, 4.5, 5, 6, 7, 8, 9)
LATENCY_BOUNDS: tuple[float, ...] = (
    *(round(m * 10.0**e, 6) for e in (-3, -2, -1, 0) for m in _DECADE),
    10.0, 15.0, 20.0, 30.0, math.inf,
)  # fmt: skip


@dataclass(frozen=True)
class ArmCounts:
    """One arm's counters: requests answered, errors among them (5xx and connection
    failures), and the latency histogram: ``buckets[i]`` requests took at most
    ``bounds[i]`` seconds (cumulative, as Prometheus keeps them; the last bound is +Inf).
    ``buckets`` is empty where the provider has no histogram (CloudWatch gives a
    quantile instead: ``quantile_seconds``)."""

    requests: int = 0
    errors: int = 0
    bounds: tuple[float, ...] = LATENCY_BOUNDS
    buckets: tuple[int, ...] = ()
    quantile_seconds: float | None = None

    def minus(self, earlier: ArmCounts) -> ArmCounts:
        """The increments since ``earlier``; a counter that went down (a facade restarted)
        counts from zero again."""
        if self.requests < earlier.requests or self.errors < earlier.errors:
            return self
        if self.buckets and earlier.buckets and self.bounds == earlier.bounds:
            if any(a < b for a, b in zip(self.buckets, earlier.buckets, strict=True)):
                return self
            buckets = tuple(a - b for a, b in zip(self.buckets, earlier.buckets, strict=True))
        else:
            buckets = self.buckets
        return ArmCounts(
            self.requests - earlier.requests,
            self.errors - earlier.errors,
            self.bounds,
            buckets,
            self.quantile_seconds,
        )


@dataclass(frozen=True)
class Window:
    """One analysis interval's increments for both arms."""

    baseline: ArmCounts
    canary: ArmCounts
    seconds: float = 0.0  # how long the interval was


class Result(StrEnum):
    PASS = "pass"  # noqa: S105 - a verdict, not a secret
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"
    PROVIDER_ERROR = "provider_error"


@dataclass(frozen=True)
class Verdict:
    """A judgement of one metric: its result, the samples behind it, the estimate with
    its interval (both in the metric's unit), and the reason in words."""

    metric: str  # errors | latency | critical | sync | shadow | provider
    result: Result
    reason: str
    baseline_n: int = 0
    canary_n: int = 0
    estimate: float | None = None
    interval: tuple[float, float] | None = None
    unit: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["result"] = str(self.result)
        if self.interval is not None:
            out["interval"] = [_finite(v) for v in self.interval]
        out["estimate"] = _finite(self.estimate)
        return out


def _finite(value: float | None) -> float | str | None:
    if value is None:
        return None
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return value


__all__ = ["LATENCY_BOUNDS", "ArmCounts", "Result", "Verdict", "Window"]
