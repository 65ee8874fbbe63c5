"""The sync's status figures as Prometheus metrics, gathered at each scrape.

``strangler_sync_queue_messages{stream}``, ``…_in_flight_messages``,
``…_dead_letters``, ``…_outbox_pending_events``, ``…_outbox_oldest_pending_seconds``,
``…_outbox_published_events`` (a counter), ``…_outbox_refused_events``,
``…_outbox_retrying_events``, ``…_outbox_set_aside_events``,
``…_conflicts`` (a counter: concurrent changes of one entity on both sides, settled).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from http.server import ThreadingHTTPServer
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client import exposition as prom
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

Gather = Callable[[], dict[str, dict[str, Any]]]
GAUGES = {
    "queued": ("strangler_sync_queue_messages", "Messages waiting in the stream's queue."),
    "in_flight": ("strangler_sync_in_flight_messages", "Messages received, not yet deleted."),
    "dead_letters": ("strangler_sync_dead_letters", "Messages in the stream's DLQ."),
    "outbox_pending": ("strangler_sync_outbox_pending_events", "Outbox rows not yet published."),
    "outbox_oldest_pending_age_s": (
        "strangler_sync_outbox_oldest_pending_seconds",
        "Age of the oldest unpublished outbox row: how far the relay is behind.",
    ),
    "outbox_refused": (
        "strangler_sync_outbox_refused_events",
        "Outbox rows SQS refused at least once.",
    ),
    "outbox_retrying": (
        "strangler_sync_outbox_retrying_events",
        "Outbox rows SQS refused for now, waiting for their next try.",
    ),
    "outbox_parked": (
        "strangler_sync_outbox_set_aside_events",
        "Changes set aside: too large for the queue or refused by SQS for good.",
    ),
}


class SyncCollector(Collector):
    def __init__(self, gather: Gather) -> None:
        self.gather = gather

    def collect(self) -> Iterator[Metric]:
        report = self.gather()
        for key, (name, text) in GAUGES.items():
            family = GaugeMetricFamily(name, text, labels=["stream"])
            for stream, figures in report.items():
                if key in figures:
                    family.add_metric([stream], float(figures[key]))
            yield family
        counters = {
            "outbox_published": (
                "strangler_sync_outbox_published_events",
                "Outbox rows published.",
            ),
            "conflicts": (
                "strangler_sync_conflicts",
                "Changes of one entity made concurrently on both sides, settled by the rule.",
            ),
        }
        for key, (name, text) in counters.items():
            counter = CounterMetricFamily(name, text, labels=["stream"])
            for stream, figures in report.items():
                if key in figures:
                    counter.add_metric([stream], float(figures[key]))
            yield counter


def _registry(gather: Gather) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SyncCollector(gather))
    return registry


def exposition(report: dict[str, dict[str, Any]]) -> str:
    return exposition_text(lambda: report)


def exposition_text(gather: Gather) -> str:
    return prom.generate_latest(_registry(gather)).decode()


def serve(host: str, port: int, gather: Gather) -> ThreadingHTTPServer:
    """An HTTP server (not started) answering every GET with the metrics."""
    handler = prom.MetricsHandler.factory(_registry(gather))
    return ThreadingHTTPServer((host, port), handler)
