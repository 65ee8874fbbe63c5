"""Per-backend figures beside locust's own: which backend answered each request.

The facade names the backend that answered in a response header (``X-Strangler-Backend``
by default). ``BackendStats.install(environment)`` tallies every request locust records
— successes and failures, so the rows add up to locust's totals — by that backend (and
by phase, for the flip scenario), in locust's own ``RequestStats``: the same percentile
arithmetic as locust's tables, and the same merging in distributed mode (workers attach
their tallies to the reports they send; the master adds them up).

Reported three ways: a table in the terminal when the run ends, ``PREFIX_backends.csv``
beside locust's CSV files (``--csv PREFIX``), and a **Backends** tab in the web UI
(with a CSV download). A request that got no response is counted under ``(no answer)``.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from locust import events
from locust.env import Environment
from locust.runners import MasterRunner, WorkerRunner
from locust.stats import RequestStats, StatsEntry

F = TypeVar("F", bound=Callable[..., Any])
HEADER = "X-Strangler-Backend"


def on(hook: Any) -> Callable[[F], F]:
    """Register a listener on a locust event hook (``@on(events.init)``), keeping its type."""

    def register(func: F) -> F:
        hook.add_listener(func)
        return func

    return register


NO_ANSWER = "(no answer)"
ALL_PHASES = ""
REPORT_KEY = "strangler_backends"
COLUMNS = ("phase", "backend", "requests", "share_percent", "failures", "failure_percent",
           "p50_ms", "p95_ms", "p99_ms", "avg_ms")  # fmt: skip


@dataclass
class Row:
    phase: str
    backend: str
    requests: int
    share_percent: float
    failures: int
    failure_percent: float
    p50_ms: int
    p95_ms: int
    p99_ms: int
    avg_ms: float

    def as_dict(self) -> dict[str, Any]:
        return {c: getattr(self, c) for c in COLUMNS}


class BackendStats:
    """Requests by (phase, backend). Phases are labels the flip scenario sets; the
    ordinary scenarios have one, ``""``."""

    def __init__(self, header: str = HEADER) -> None:
        self.header = header
        self.stats = RequestStats(use_response_times_cache=False)
        self.phase = ALL_PHASES

    # -- collecting ----------------------------------------------------------------------

    def on_request(
        self,
        response_time: float,
        response_length: int,
        response: Any = None,
        exception: Any = None,
        **_: Any,
    ) -> None:
        headers = getattr(response, "headers", None)
        backend = (headers.get(self.header) if headers is not None else None) or NO_ANSWER
        self.stats.log_request(self.phase, backend, int(response_time), response_length or 0)
        if exception is not None:
            self.stats.log_error(self.phase, backend, exception)

    def report(self, client_id: str, data: dict[str, Any]) -> None:
        """Worker: attach the tally since the last report, and start again."""
        data[REPORT_KEY] = [entry.get_stripped_report() for entry in self.stats.entries.values()]

    def merge(self, client_id: str, data: dict[str, Any]) -> None:
        """Master: add a worker's tally."""
        for raw in data.get(REPORT_KEY, []):
            entry = StatsEntry.unserialize(raw, self.stats)
            self.stats.get(entry.name, entry.method).extend(entry)

    def reset(self) -> None:
        self.stats = RequestStats(use_response_times_cache=False)

    # -- reporting -------------------------------------------------------------------------

    def _row(self, phase: str, backend: str, entry: StatsEntry, phase_total: int) -> Row:
        n = entry.num_requests
        return Row(
            phase=phase,
            backend=backend,
            requests=n,
            share_percent=round(100 * n / phase_total, 1) if phase_total else 0.0,
            failures=entry.num_failures,
            failure_percent=round(100 * entry.num_failures / n, 2) if n else 0.0,
            p50_ms=entry.get_response_time_percentile(0.5) if n else 0,
            p95_ms=entry.get_response_time_percentile(0.95) if n else 0,
            p99_ms=entry.get_response_time_percentile(0.99) if n else 0,
            avg_ms=round(entry.avg_response_time, 1) if n else 0.0,
        )

    def rows(self, by_phase: bool = False) -> list[Row]:
        """One row per backend (over all phases), or per phase and backend."""
        grouped: dict[tuple[str, str], StatsEntry] = {}
        for (backend, phase), entry in sorted(self.stats.entries.items()):
            key = (phase if by_phase else ALL_PHASES, backend)
            if key not in grouped:
                grouped[key] = StatsEntry(self.stats, backend, key[0])
            grouped[key].extend(entry)
        totals: dict[str, int] = {}
        for (phase, _), entry in grouped.items():
            totals[phase] = totals.get(phase, 0) + entry.num_requests
        ordered = sorted(grouped.items(), key=lambda item: (_phase_order(item[0][0]), item[0][1]))
        return [self._row(p, b, e, totals[p]) for (p, b), e in ordered]

    def table(self, by_phase: bool = False) -> str:
        rows = self.rows(by_phase)
        lines = [
            f"{'phase':<10} {'backend':<14} {'requests':>9} {'share':>7} {'failures':>9} "
            f"{'fail %':>7} {'p50':>6} {'p95':>6} {'p99':>6}"
        ]
        for r in rows:
            lines.append(
                f"{r.phase or 'all':<10} {r.backend:<14} {r.requests:>9} {r.share_percent:>6.1f}% "
                f"{r.failures:>9} {r.failure_percent:>6.2f}% {r.p50_ms:>6} {r.p95_ms:>6} "
                f"{r.p99_ms:>6}"
            )
        lines.append(f"{'':<10} {'total':<14} {sums(rows):>9}")
        return "\n".join(lines)

    def csv_text(self, by_phase: bool = False) -> str:
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=COLUMNS)
        writer.writeheader()
        for row in self.rows(by_phase):
            writer.writerow(row.as_dict())
        return out.getvalue()

    # -- wiring into locust ------------------------------------------------------------------

    def install(self, environment: Environment) -> None:
        runner, hooks = environment.runner, environment.events
        on(hooks.request)(self.on_request)
        on(hooks.reset_stats)(self.reset)
        if isinstance(runner, WorkerRunner):
            on(hooks.report_to_master)(self.report)
            return
        if isinstance(runner, MasterRunner):
            on(hooks.worker_report)(self.merge)
        on(hooks.quitting)(lambda **_: self._finish(environment))
        if environment.web_ui is not None:
            self._extend_web_ui(environment)

    def _finish(self, environment: Environment) -> None:
        by_phase = any(phase for _, phase in self.stats.entries)
        print("\nRequests by the backend that answered (header " + self.header + "):")
        print(self.table(by_phase))
        # locust's summary counts the same events; its CSV files are a snapshot of up to a
        # second before the end, so the comparison is made here, with the final figures
        print(
            f"backends: {sums(self.rows())} requests, {self.stats.total.num_failures} failed; "
            f"locust: {environment.stats.total.num_requests} requests, "
            f"{environment.stats.total.num_failures} failed",
            flush=True,
        )
        prefix = getattr(environment.parsed_options, "csv_prefix", None)
        if prefix:
            with open(f"{prefix}_backends.csv", "w", encoding="utf-8", newline="") as f:
                f.write(self.csv_text(by_phase))

    def _extend_web_ui(self, environment: Environment) -> None:
        from flask import Response, request

        web_ui = environment.web_ui
        assert web_ui is not None
        app = web_ui.app
        assert app is not None
        web_ui.template_args["extended_tabs"] = [{"title": "Backends", "key": "backends"}]
        web_ui.template_args["extended_tables"] = [
            {
                "key": "backends",
                "structure": [{"key": c, "title": c.replace("_", " ")} for c in COLUMNS],
            }
        ]
        web_ui.template_args["extended_csv_files"] = [
            {"href": "./backends/csv", "title": "Download requests by backend CSV"}
        ]

        @app.after_request
        def add_backends(response: Response) -> Response:
            if request.path != "/stats/requests" or not response.is_json:
                return response
            body = dict(response.json or {})
            body["extended_stats"] = [
                {"key": "backends", "data": [r.as_dict() for r in self.rows(by_phase=True)]}
            ]
            response.set_data(json.dumps(body))
            return response

        @app.route("/backends/csv")
        def backends_csv() -> Response:
            return Response(
                self.csv_text(by_phase=True),
                mimetype="text/csv",
                headers={"Content-Disposition": "attachment; filename=backends.csv"},
            )


def install_listener(header: str = HEADER) -> BackendStats:
    """Create the tally and install it when locust's environment is ready (call at import
    time of a locustfile)."""
    tally = BackendStats(header)

    @on(events.init)
    def _(environment: Environment, **_: Any) -> None:
        tally.install(environment)

    return tally


def _phase_order(phase: str) -> tuple[int, str]:
    """Numbered phases ("2:10%") in their order, then any other label."""
    number, _, _ = phase.partition(":")
    return (int(number), phase) if number.isdigit() else (10**9, phase)


def sums(rows: Iterable[Row]) -> int:
    return sum(r.requests for r in rows)
