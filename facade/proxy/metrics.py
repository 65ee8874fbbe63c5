"""Prometheus metrics of the facade, per route x backend.

``strangler_facade_requests_total{route,backend,decision}``    how each request was assigned
                                                                (weight, sticky, stable_key,
                                                                override)
``strangler_facade_responses_total{route,backend,status_class}``
``strangler_facade_request_duration_seconds{route,backend}``   histogram, request's last byte
                                                                to response's last byte
``strangler_facade_upstream_errors_total{route,backend,kind}`` connect/timeout/reset/lambda...
``strangler_facade_route_weight_percent{route,backend}``       configured weight, to read
                                                                beside the observed shares
``strangler_facade_reloads_total{result}``                      ok / invalid
``strangler_facade_refused_total{code}``                        requests answered without a
                                                                backend: limits, Upgrade,
                                                                malformed, connection cap
``strangler_facade_lambda_invocations_total{backend,version,status_class}``
``strangler_facade_lambda_duration_seconds{backend,version}``   a canaried Lambda backend's
                                                                invocations per version (as
                                                                CloudWatch's ExecutedVersion)
``strangler_facade_faults_injected_total{route,backend,fault}`` injected faults (abort, delay);
                                                                an abort is also a response
                                                                of its backend
``strangler_facade_shadow_total{route,result}``                 shadow copies: matched,
                                                                differing (before noise is
                                                                removed: the report does
                                                                that), noise (a second
                                                                primary answer compared),
                                                                dropped (a cap), error

The request path only adds to plain Python lists (no lock, no label lookup); a scrape
turns them into metric families through a custom collector (prometheus_client's public
``Collector`` API). With ``serve --workers N`` every worker writes its cumulative figures
to a shared directory once a second and at exit, and a scrape of any worker sums them.
"""

from __future__ import annotations

import bisect
import contextlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from facade.rollout.samples import LATENCY_BOUNDS
from facade.routing.model import RoutingTable

BUCKETS = LATENCY_BOUNDS[:-1]  # the rollout's latency check reads these
STATUS_CLASSES = ("1xx", "2xx", "3xx", "4xx", "5xx")
_NB = len(BUCKETS) + 1  # the last bucket is +Inf
# A cell: [requests, 1xx, 2xx, 3xx, 4xx, 5xx, bucket_0 .. bucket_+Inf, sum_seconds]
_CELL = 1 + len(STATUS_CLASSES) + _NB + 1
_bisect = bisect.bisect_left


def _count(
    cells: dict[tuple[str, str], list[float]], key: tuple[str, str], status: int, seconds: float
) -> None:
    cell = cells.get(key)
    if cell is None:
        cell = cells[key] = [0.0] * _CELL
    cell[0] += 1
    cell[min(max(status // 100, 1), 5)] += 1
    cell[6 + _bisect(BUCKETS, seconds)] += 1
    cell[-1] += seconds


def _histogram(cell: list[float]) -> list[tuple[str, float]]:
    cumulative, buckets = 0.0, []
    for bound, count in zip((*BUCKETS, float("inf")), cell[6 : 6 + _NB], strict=True):
        cumulative += count
        buckets.append(("+Inf" if bound == float("inf") else str(bound), cumulative))
    return buckets


def _invocation_families(cells: dict[tuple[str, str], list[float]]) -> Iterator[Metric]:
    invocations = CounterMetricFamily(
        "strangler_facade_lambda_invocations",
        "Invocations of a canaried Lambda backend by version and status class",
        labels=["backend", "version", "status_class"],
    )
    duration = HistogramMetricFamily(
        "strangler_facade_lambda_duration_seconds",
        "Time an invocation of a canaried Lambda backend's version took",
        labels=["backend", "version"],
    )
    for (backend, version), cell in sorted(cells.items()):
        for i, status_class in enumerate(STATUS_CLASSES, start=1):
            invocations.add_metric([backend, version, status_class], cell[i])
        duration.add_metric([backend, version], _histogram(cell), cell[-1])
    yield from (invocations, duration)


@dataclass(frozen=True)
class BackendTotals:
    """One route x backend's cumulative figures, summed over decisions (and workers)."""

    requests: float
    errors: float  # 5xx answers, the facade's own 502/504 included
    buckets: tuple[float, ...]  # requests per latency bucket (not cumulative); BUCKETS + Inf
    seconds: float


class Metrics(Collector):
    def __init__(self, shared_dir: str | Path | None = None) -> None:
        self.shared_dir = Path(shared_dir) if shared_dir else None
        self.cells: dict[tuple[str, str, str], list[float]] = {}
        self.errors: dict[tuple[str, str, str], int] = {}
        self.reloads: dict[str, int] = {}
        self.refused: dict[str, int] = {}
        self.faults: dict[tuple[str, str, str], int] = {}
        self.shadows: dict[tuple[str, str], int] = {}
        self.weights: dict[tuple[str, str], float] = {}
        self.invocations: dict[tuple[str, str], list[float]] = {}
        self.merged_invocations: dict[tuple[str, str], list[float]] = {}
        self.registry = CollectorRegistry()
        self.registry.register(self)

    # -- the request path ---------------------------------------------------------------

    def observe(self, route: str, backend: str, decision: str, status: int, seconds: float) -> None:
        key = (route, backend, decision)
        cell = self.cells.get(key)
        if cell is None:
            cell = self.cells[key] = [0.0] * _CELL
        cell[0] += 1
        cell[min(max(status // 100, 1), 5)] += 1
        cell[6 + _bisect(BUCKETS, seconds)] += 1
        cell[-1] += seconds

    def invocation(self, backend: str, version: str, status: int, seconds: float) -> None:
        """One invocation of one version of a canaried Lambda backend."""
        _count(self.invocations, (backend, version), status, seconds)

    def upstream_error(self, route: str, backend: str, kind: str) -> None:
        key = (route, backend, kind)
        self.errors[key] = self.errors.get(key, 0) + 1

    def fault(self, route: str, backend: str, fault: str) -> None:
        key = (route, backend, fault)
        self.faults[key] = self.faults.get(key, 0) + 1

    def shadow(self, route: str, result: str, count: int = 1) -> None:
        key = (route, result)
        self.shadows[key] = self.shadows.get(key, 0) + count

    def refusal(self, code: str) -> None:
        self.refused[code] = self.refused.get(code, 0) + 1

    def table_loaded(self, table: RoutingTable, result: str) -> None:
        self.reloads[result] = self.reloads.get(result, 0) + 1
        if result == "ok":
            self.weights = {
                (route.name, target.backend): target.percent
                for route in table.all_routes
                for target in route.targets
            }

    # -- sharing between workers --------------------------------------------------------

    def _state(self) -> dict[str, object]:
        return {
            "cells": [[*k, v] for k, v in self.cells.items()],
            "errors": [[*k, v] for k, v in self.errors.items()],
            "reloads": self.reloads,
            "refused": self.refused,
            "faults": [[*k, v] for k, v in self.faults.items()],
            "shadows": [[*k, v] for k, v in self.shadows.items()],
            "weights": [[*k, v] for k, v in self.weights.items()],
            "invocations": [[*k, v] for k, v in self.invocations.items()],
        }

    def dump(self) -> None:
        """Write this worker's cumulative figures for the others' scrapes."""
        if self.shared_dir is None:
            return
        path = self.shared_dir / f"worker-{os.getpid()}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self._state()))
        os.replace(tmp, path)

    def _merged(
        self,
    ) -> tuple[
        dict[tuple[str, str, str], list[float]],
        dict[tuple[str, str, str], int],
        dict[str, int],
        dict[tuple[str, str], float],
        dict[str, int],
        dict[tuple[str, str, str], int],
        dict[tuple[str, str], int],
    ]:
        cells = {k: list(v) for k, v in self.cells.items()}
        errors = dict(self.errors)
        reloads = dict(self.reloads)
        refused = dict(self.refused)
        weights = dict(self.weights)
        invocations = {k: list(v) for k, v in self.invocations.items()}
        faults = dict(self.faults)
        shadows = dict(self.shadows)
        if self.shared_dir is not None:
            own = f"worker-{os.getpid()}.json"
            for path in sorted(self.shared_dir.glob("worker-*.json")):
                if path.name == own:
                    continue
                with contextlib.suppress(OSError, ValueError):
                    state = json.loads(path.read_text())
                    for *key, values in state["cells"]:
                        merged = cells.setdefault((key[0], key[1], key[2]), [0.0] * _CELL)
                        for i, value in enumerate(values):
                            merged[i] += value
                    for *key, count in state["errors"]:
                        error_key = (key[0], key[1], key[2])
                        errors[error_key] = errors.get(error_key, 0) + count
                    for result, count in state["reloads"].items():
                        reloads[result] = reloads.get(result, 0) + count
                    for code, count in state.get("refused", {}).items():
                        refused[code] = refused.get(code, 0) + count
                    for *key, values in state.get("invocations", []):
                        merged = invocations.setdefault((key[0], key[1]), [0.0] * _CELL)
                        for i, value in enumerate(values):
                            merged[i] += value
                    for *key, count in state.get("faults", []):
                        fault_key = (key[0], key[1], key[2])
                        faults[fault_key] = faults.get(fault_key, 0) + count
                    for route, result, count in state.get("shadows", []):
                        shadows[route, result] = shadows.get((route, result), 0) + count
        self.merged_invocations = invocations
        return cells, errors, reloads, weights, refused, faults, shadows

    def totals(self) -> dict[tuple[str, str], BackendTotals]:
        """Every route x backend's cumulative figures, all workers summed (what a scrape
        would show), for readers that want numbers rather than exposition text."""
        per_backend: dict[tuple[str, str], list[float]] = {}
        for (route, backend, _), cell in self._merged()[0].items():
            total = per_backend.setdefault((route, backend), [0.0] * _CELL)
            for i, value in enumerate(cell):
                total[i] += value
        return {
            key: BackendTotals(cell[0], cell[5], tuple(cell[6 : 6 + _NB]), cell[-1])
            for key, cell in per_backend.items()
        }

    # -- exposition ---------------------------------------------------------------------

    def collect(self) -> Iterator[Metric]:
        cells, errors, reloads, weights, refused, faults, shadows = self._merged()
        requests = CounterMetricFamily(
            "strangler_facade_requests",
            "Requests by route, backend and how the backend was chosen",
            labels=["route", "backend", "decision"],
        )
        responses = CounterMetricFamily(
            "strangler_facade_responses",
            "Responses by status class",
            labels=["route", "backend", "status_class"],
        )
        duration = HistogramMetricFamily(
            "strangler_facade_request_duration_seconds",
            "Time from the request's last byte to the response's last byte",
            labels=["route", "backend"],
        )
        per_backend: dict[tuple[str, str], list[float]] = {}
        for (route, backend, decision), cell in sorted(cells.items()):
            requests.add_metric([route, backend, decision], cell[0])
            total = per_backend.setdefault((route, backend), [0.0] * _CELL)
            for i, value in enumerate(cell):
                total[i] += value
        for (route, backend), cell in sorted(per_backend.items()):
            for i, status_class in enumerate(STATUS_CLASSES, start=1):
                responses.add_metric([route, backend, status_class], cell[i])
            cumulative, buckets = 0.0, []
            for bound, count in zip((*BUCKETS, float("inf")), cell[6 : 6 + _NB], strict=True):
                cumulative += count
                buckets.append(("+Inf" if bound == float("inf") else str(bound), cumulative))
            duration.add_metric([route, backend], buckets, cell[-1])
        upstream = CounterMetricFamily(
            "strangler_facade_upstream_errors",
            "Failed exchanges with a backend",
            labels=["route", "backend", "kind"],
        )
        for key, count in sorted(errors.items()):
            upstream.add_metric(list(key), count)
        weight = GaugeMetricFamily(
            "strangler_facade_route_weight_percent",
            "Configured share of a route's traffic",
            labels=["route", "backend"],
        )
        for (route, backend), percent in sorted(weights.items()):
            weight.add_metric([route, backend], percent)
        reload_family = CounterMetricFamily(
            "strangler_facade_reloads", "Routing table reloads", labels=["result"]
        )
        for result, count in sorted(reloads.items()):
            reload_family.add_metric([result], count)
        refused_family = CounterMetricFamily(
            "strangler_facade_refused",
            "Requests the facade answered itself without a backend (limits, Upgrade, malformed)",
            labels=["code"],
        )
        for code, count in sorted(refused.items()):
            refused_family.add_metric([code], count)
        faults_family = CounterMetricFamily(
            "strangler_facade_faults_injected",
            "Faults the facade injected (routing.yaml faults, the admin API)",
            labels=["route", "backend", "fault"],
        )
        for key, count in sorted(faults.items()):
            faults_family.add_metric(list(key), count)
        shadow_family = CounterMetricFamily(
            "strangler_facade_shadow",
            "Shadow copies by outcome: matched, differing, noise, dropped, error",
            labels=["route", "result"],
        )
        for (route, result), count in sorted(shadows.items()):
            shadow_family.add_metric([route, result], count)
        yield from (
            requests,
            responses,
            duration,
            upstream,
            weight,
            reload_family,
            refused_family,
            faults_family,
            shadow_family,
        )
        yield from _invocation_families(self.merged_invocations)

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
