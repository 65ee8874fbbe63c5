"""Prometheus series of the rollouts under way, exposed by the facade's admin listener
beside its own (``/__facade/metrics``), read from the rollouts' state files at scrape
time — so every step and verdict a controller records is a series wherever the facade
is scraped, whichever process runs the controller.

``strangler_rollout_info{route,from,to,state}``                 1 per rollout
``strangler_rollout_step{route}`` / ``strangler_rollout_steps{route}``   step n of m
``strangler_rollout_weight_percent{route,backend,kind}``        configured / observed /
                                                                actual (read back from AWS)
``strangler_rollout_verdict{route,metric,result}``              1 for the current result
``strangler_rollout_estimate{route,metric}``                    the verdict's estimate
``strangler_rollout_events_total{route,event}``                 steps, pauses, rollbacks…
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from facade.rollout.samples import Result

RESULTS = tuple(str(r) for r in Result)


class RolloutCollector(Collector):
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _states(self) -> Iterator[dict[str, Any]]:
        if not self.directory.is_dir():
            return
        for path in sorted(self.directory.glob("*.json")):
            with contextlib.suppress(OSError, ValueError):
                data = json.loads(path.read_text(encoding="utf-8"))
                if isinstance(data, dict) and "route" in data:
                    yield data

    def collect(self) -> Iterator[Metric]:
        info = GaugeMetricFamily(
            "strangler_rollout_info",
            "A rollout and its state",
            labels=["route", "from", "to", "state"],
        )
        step = GaugeMetricFamily(
            "strangler_rollout_step", "The step under way (1-based)", labels=["route"]
        )
        weight = GaugeMetricFamily(
            "strangler_rollout_weight_percent",
            "The new backend's weight: configured, observed in the step, read back from AWS",
            labels=["route", "backend", "kind"],
        )
        verdict = GaugeMetricFamily(
            "strangler_rollout_verdict",
            "The last analysis' result per metric (1 for the current result)",
            labels=["route", "metric", "result"],
        )
        estimate = GaugeMetricFamily(
            "strangler_rollout_estimate",
            "The last analysis' estimate per metric",
            labels=["route", "metric"],
        )
        events = CounterMetricFamily(
            "strangler_rollout_events",
            "Transitions of a rollout (last 200 kept)",
            labels=["route", "event"],
        )
        for data in self._states():
            route, canary = str(data["route"]), str(data.get("canary", ""))
            info.add_metric(
                [route, str(data.get("baseline", "")), canary, str(data.get("phase", ""))], 1
            )
            step.add_metric([route], float(data.get("step", -1)) + 1)
            weight.add_metric([route, canary, "configured"], float(data.get("configured", 0)) / 10)
            for kind in ("observed", "actual"):
                value = data.get(kind)
                if isinstance(value, int | float):
                    weight.add_metric([route, canary, kind], float(value))
            for found in [*data.get("verdicts", []), *data.get("gates", [])]:
                metric = str(found.get("metric"))
                for result in RESULTS:
                    verdict.add_metric(
                        [route, metric, result], 1.0 if found.get("result") == result else 0.0
                    )
                value = found.get("estimate")
                if isinstance(value, int | float):
                    estimate.add_metric([route, metric], float(value))
            counts: dict[str, int] = {}
            for entry in data.get("history", []):
                name = str(entry.get("event"))
                counts[name] = counts.get(name, 0) + 1
            for name, count in sorted(counts.items()):
                events.add_metric([route, name], count)
        yield from (info, step, weight, verdict, estimate, events)


__all__ = ["RolloutCollector"]
