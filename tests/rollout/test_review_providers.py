"""Adversarial review of the metrics providers: odd values in an exposition, a provider
that trickles its answer. "A provider that fails is a provider error — never a pass,
never a fail" — and never a crash of the controller."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from facade.rollout.controller import Controller
from facade.rollout.providers import (
    FacadeProvider,
    PrometheusProvider,
    ProviderError,
    parse_exposition,
)
from facade.rollout.samples import Result
from facade.rollout.state import RolloutStore
from tests.rollout.controller_kit import Clock, write_routing


def _exposition(canary_requests: str) -> str:
    return (
        "# TYPE strangler_facade_responses counter\n"
        "strangler_facade_responses_total"
        '{route="orders",backend="monolith",status_class="2xx"} 900\n'
        'strangler_facade_responses_total{route="orders",backend="orders",status_class="2xx"} '
        f"{canary_requests}\n"
    )


@pytest.mark.parametrize("value", ["NaN", "+Inf", "1e400"])
def test_an_exposition_with_a_nan_or_infinite_counter_is_a_provider_error(value: str) -> None:
    """prometheus_client parses NaN and +Inf happily; `_Arm.counts` then calls `int()` on
    them and raises ValueError / OverflowError — not ProviderError — which the controller
    does not catch: the rollout dies with a traceback (exit 1, "rolled back")."""
    with pytest.raises(ProviderError):
        parse_exposition(_exposition(value), "orders", ("monolith", "orders"))


def test_a_prometheus_answer_with_nan_is_a_provider_error() -> None:
    """Prometheus returns "NaN" for 0/0 and after some resets; `float("NaN")` passes the
    provider's checks and `int(nan)` in `_Arm.counts` raises ValueError."""
    answer = {
        "status": "success",
        "data": {
            "resultType": "vector",
            "result": [
                {"metric": {"backend": "orders", "status_class": "2xx"}, "value": [0, "NaN"]}
            ],
        },
    }
    provider = PrometheusProvider(
        "http://prometheus:9090", fetch=lambda url, headers, timeout: json.dumps(answer).encode()
    )
    with pytest.raises(ProviderError):
        provider.read("orders", "monolith", "orders")


def test_the_controller_survives_a_nan_reading(tmp_path: Path) -> None:
    """End to end: one NaN in the facade's metrics page kills the controller."""
    write_routing(tmp_path)
    pages = iter([_exposition("10"), _exposition("NaN")] + [_exposition("20")] * 1000)
    provider = FacadeProvider(
        "http://127.0.0.1:9901", fetch=lambda url, headers, timeout: next(pages).encode()
    )
    clock = Clock()
    controller = Controller(
        tmp_path / "routing.yaml",
        "orders",
        RolloutStore(tmp_path / "state", "orders"),
        provider,
        clock=clock,
        sleep=clock.sleep,
        say=lambda line: None,
    )
    state = controller.begin()
    controller._pre_checks(state)
    controller._analyse(state)
    controller._analyse(state)  # the NaN page
    assert state.verdicts[0]["result"] == str(Result.PROVIDER_ERROR)


@pytest.fixture
def trickling_server() -> Iterator[str]:
    """An HTTP server that sends its headers at once, then one byte every 0.3 s for ~20 s
    (a wedged facade worker, a proxy in between, a Prometheus under load)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    stop = threading.Event()

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n")
            for _ in range(66):
                if stop.wait(0.3):
                    return
                try:
                    conn.sendall(b"#")
                except OSError:
                    return

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    host, port = listener.getsockname()
    yield f"http://{host}:{port}"
    stop.set()
    listener.close()


def test_a_provider_that_trickles_its_answer_is_cut_off_at_its_timeout(
    trickling_server: str,
) -> None:
    """`urlopen(timeout=…)` bounds each socket read, not the request: a server that sends
    a byte every 0.3 s holds a provider with a 1 s timeout for as long as it likes, and the
    controller (and every abort waiting on it) with it."""
    provider = FacadeProvider(trickling_server, timeout=1.0)
    outcome: list[object] = []

    def read() -> None:
        try:
            outcome.append(provider.read("orders", "monolith", "orders"))
        except ProviderError as exc:
            outcome.append(exc)

    started = time.monotonic()
    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    thread.join(8.0)  # a bound on the test, not a synchronisation: 8x the timeout
    assert outcome, f"the provider was still reading after {time.monotonic() - started:.0f}s"
    assert isinstance(outcome[0], ProviderError)


def test_one_hand_edited_state_file_does_not_break_the_facades_metrics_page(
    tmp_path: Path,
) -> None:
    """The facade's admin listener renders every rollout's state file at scrape time
    (`RolloutCollector`, registered in the facade's own registry). Unreadable JSON is
    skipped, but a readable state with one odd value (`"step": null`, a verdict that is
    not an object) raises inside `collect()` — outside the generator's `suppress` — so
    the whole `/__facade/metrics` page fails: Prometheus loses every facade series, and
    every rollout's provider reads errors and pauses."""
    from prometheus_client import generate_latest

    from facade.proxy.metrics import Metrics
    from facade.rollout.metrics import RolloutCollector

    directory = tmp_path / "rollouts"
    directory.mkdir()
    good = {"route": "catalog", "baseline": "monolith", "canary": "catalog", "phase": "baking"}
    (directory / "catalog.json").write_text(json.dumps({**good, "step": 3, "configured": 1000}))
    (directory / "orders.json").write_text(
        json.dumps({"route": "orders", "step": None, "verdicts": ["errors: pass"]})
    )
    metrics = Metrics()
    metrics.observe("orders", "monolith", "weight", 200, 0.01)
    metrics.registry.register(RolloutCollector(directory))
    page = generate_latest(metrics.registry).decode()
    assert "strangler_facade_responses_total" in page
    assert 'strangler_rollout_step{route="catalog"} 4.0' in page
