"""Where the analysis gets its counts: one reading = cumulative counters per arm.

    FacadeProvider      the facade's admin listener (``/__facade/metrics``), which with
                        ``serve --workers N`` already sums every worker
    PrometheusProvider  a Prometheus HTTP API (``/api/v1/query``) that scrapes several
                        facade instances: the same series, summed across instances
    CloudWatchProvider  (``facade.rollout.cloudwatch``) ALB target-group and Lambda
                        alias metrics through ``GetMetricData``

A provider that cannot answer raises ``ProviderError``: the controller records a
*provider error* verdict — never a pass, never a fail — and pauses after
``analysis.provider_errors`` in a row.
"""

from __future__ import annotations

import json
import math
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Protocol

from prometheus_client.parser import text_string_to_metric_families

from facade.rollout.samples import LATENCY_BOUNDS, ArmCounts

RESPONSES = "strangler_facade_responses"
DURATION = "strangler_facade_request_duration_seconds"
# a canaried Lambda backend's invocations by version (facade.proxy.metrics)
INVOCATIONS = "strangler_facade_lambda_invocations"
INVOCATION_DURATION = "strangler_facade_lambda_duration_seconds"


class ProviderError(Exception):
    """The metrics could not be read: unreachable, refused, malformed."""


class MetricsProvider(Protocol):
    name: str

    def read(self, route: str, baseline: str, canary: str) -> tuple[ArmCounts, ArmCounts]:
        """Cumulative counters of both arms now; ``ProviderError`` if unavailable."""
        ...


Fetch = Callable[[str, dict[str, str], float], bytes]


def http_get(url: str, headers: dict[str, str], timeout: float) -> bytes:
    """The body at ``url``, read whole within ``timeout`` seconds (a server that trickles
    its answer is cut off at the deadline, not after each slow read)."""
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 - http(s) only
    if not url.startswith(("http://", "https://")):
        raise ProviderError(f"{url}: only http(s) URLs can be read")
    deadline = time.monotonic() + timeout
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            chunks: list[bytes] = []
            while True:
                if time.monotonic() > deadline:
                    raise ProviderError(f"{url}: no whole answer within {timeout:g}s")
                chunk = response.read1(65536)
                if not chunk:
                    return b"".join(chunks)
                chunks.append(chunk)
    except urllib.error.HTTPError as exc:
        raise ProviderError(f"{url}: HTTP {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        raise ProviderError(f"{url}: {getattr(exc, 'reason', exc)}") from exc


class _Arm:
    def __init__(self) -> None:
        self.requests = 0.0
        self.errors = 0.0
        self.buckets: dict[float, float] = {}

    def counts(self) -> ArmCounts:
        values = [self.requests, self.errors, *self.buckets.values()]
        if not all(math.isfinite(v) and v >= 0 for v in values):
            raise ProviderError(f"a counter is not a finite count: {values[:4]}")
        if not self.buckets:
            return ArmCounts(int(self.requests), int(self.errors), LATENCY_BOUNDS, ())
        bounds = tuple(sorted(self.buckets))
        return ArmCounts(
            int(self.requests),
            int(self.errors),
            bounds,
            tuple(int(self.buckets[b]) for b in bounds),
        )


def parse_exposition(
    text: str,
    route: str,
    arms: tuple[str, str],
    *,
    families: tuple[str, str] = (RESPONSES, DURATION),
    labels: tuple[str, str] = ("route", "backend"),
) -> tuple[ArmCounts, ArmCounts]:
    """Counts of two backends of ``route`` from Prometheus text (summing duplicates, as a
    page that concatenates several facades' expositions has them) — or, with the
    invocation ``families`` and ``labels`` (backend, version), of two versions of a
    Lambda backend."""
    responses, duration = families
    scope, arm_label = labels
    found = {arm: _Arm() for arm in arms}
    try:
        parsed = list(text_string_to_metric_families(text))
    except (ValueError, TypeError) as exc:
        raise ProviderError(f"unreadable metrics exposition: {exc}") from exc
    for family in parsed:
        for sample in family.samples:
            values = sample.labels
            if values.get(scope) != route or values.get(arm_label) not in found:
                continue
            arm = found[values[arm_label]]
            if sample.name == responses + "_total":
                arm.requests += sample.value
                if values.get("status_class") == "5xx":
                    arm.errors += sample.value
            elif sample.name == duration + "_bucket":
                bound = math.inf if values.get("le") == "+Inf" else float(values["le"])
                arm.buckets[bound] = arm.buckets.get(bound, 0.0) + sample.value
    return found[arms[0]].counts(), found[arms[1]].counts()


class FacadeProvider:
    """Reads a facade's admin listener, e.g. ``http://127.0.0.1:9901``."""

    name = "facade"

    def __init__(self, admin_url: str, *, timeout: float = 5.0, fetch: Fetch = http_get) -> None:
        self.url = admin_url.rstrip("/") + "/__facade/metrics"
        self.timeout = timeout
        self.fetch = fetch

    def read(self, route: str, baseline: str, canary: str) -> tuple[ArmCounts, ArmCounts]:
        raw = self.fetch(self.url, {}, self.timeout)
        return parse_exposition(raw.decode("utf-8", "replace"), route, (baseline, canary))


class FacadeVersionProvider:
    """A canaried Lambda backend's two versions, from a facade's per-version series
    (locally, the facade plays CloudWatch's ``ExecutedVersion`` dimension)."""

    name = "facade"

    def __init__(
        self, admin_url: str, backend: str, *, timeout: float = 5.0, fetch: Fetch = http_get
    ) -> None:
        self.url = admin_url.rstrip("/") + "/__facade/metrics"
        self.backend = backend
        self.timeout = timeout
        self.fetch = fetch

    def read(self, route: str, baseline: str, canary: str) -> tuple[ArmCounts, ArmCounts]:
        raw = self.fetch(self.url, {}, self.timeout)
        return parse_exposition(
            raw.decode("utf-8", "replace"),
            self.backend,
            (baseline, canary),
            families=(INVOCATIONS, INVOCATION_DURATION),
            labels=("backend", "version"),
        )


class PrometheusProvider:
    """Instant queries against a Prometheus HTTP API, summed over every facade instance."""

    name = "prometheus"

    def __init__(self, base_url: str, *, timeout: float = 10.0, fetch: Fetch = http_get) -> None:
        self.base = base_url.rstrip("/")
        self.timeout = timeout
        self.fetch = fetch

    def _query(self, promql: str) -> list[tuple[dict[str, str], float]]:
        url = f"{self.base}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        raw = self.fetch(url, {"Accept": "application/json"}, self.timeout)
        try:
            document = json.loads(raw)
            if document.get("status") != "success":
                raise ProviderError(f"prometheus: {document.get('error', 'query failed')}")
            data = document["data"]
            if data["resultType"] != "vector":
                raise ProviderError(f"prometheus: expected a vector, got {data['resultType']}")
            return [(r["metric"], float(r["value"][1])) for r in data["result"]]
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            raise ProviderError(f"prometheus: malformed answer to {promql!r}: {exc}") from exc

    def read(self, route: str, baseline: str, canary: str) -> tuple[ArmCounts, ArmCounts]:
        selector = f'route="{_quote(route)}",backend=~"{_quote(baseline)}|{_quote(canary)}"'
        responses = self._query(f"sum by (backend, status_class) ({RESPONSES}_total{{{selector}}})")
        buckets = self._query(f"sum by (backend, le) ({DURATION}_bucket{{{selector}}})")
        arms = {baseline: _Arm(), canary: _Arm()}
        for labels, value in responses:
            arm = arms.get(labels.get("backend", ""))
            if arm is not None:
                arm.requests += value
                if labels.get("status_class") == "5xx":
                    arm.errors += value
        for labels, value in buckets:
            arm = arms.get(labels.get("backend", ""))
            if arm is not None and "le" in labels:
                bound = math.inf if labels["le"] == "+Inf" else float(labels["le"])
                arm.buckets[bound] = arm.buckets.get(bound, 0.0) + value
        return arms[baseline].counts(), arms[canary].counts()


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("|", "\\|")


__all__ = [
    "FacadeProvider",
    "FacadeVersionProvider",
    "MetricsProvider",
    "PrometheusProvider",
    "ProviderError",
    "http_get",
    "parse_exposition",
]
