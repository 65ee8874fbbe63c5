"""The shadow store: the gate's summary, noise removed; bounded; cleared per route."""

from __future__ import annotations

from pathlib import Path

import pytest

from facade.shadow import store
from facade.shadow.store import NOISE, SHADOW, Comparison, Example, ShadowSummary, Writer


def write(path: Path, rows: list[Comparison], keep: int = 10_000, **counts: int) -> None:
    writer = Writer(path, {"orders": keep})
    try:
        writer.write(rows, {("orders", k.replace("_", ":", 1)): v for k, v in counts.items()})
    finally:
        writer.close()


def test_nothing_stored_reads_as_zero(tmp_path: Path) -> None:
    assert store.summary(tmp_path / "none.sqlite3", "orders") == ShadowSummary(0, 0, 0.0, 0, 0)


def test_the_summary_removes_noise_and_counts_drops_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    point = "GET /api/orders/{id}/"
    rows = [Comparison("orders", point, NOISE, ("$.updated_at",)) for _ in range(10)]
    rows += [Comparison("orders", point, SHADOW, ("$.updated_at",)) for _ in range(70)]
    rows += [Comparison("orders", point, SHADOW, ("$.updated_at", "$.total")) for _ in range(30)]
    rows += [Comparison("other", point, SHADOW, ("$.total",))]
    write(path, rows, dropped_concurrency=3, dropped_body=1, error_shadow_timeout=2)
    assert store.summary(path, "orders") == ShadowSummary(100, 30, 0.3, 4, 2)
    assert store.summary(path, "other").compared == 1


def test_an_endpoint_without_enough_noise_pairs_borrows_the_routes(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    rows = [Comparison("orders", "GET /a", NOISE, ("$.at",)) for _ in range(10)]
    rows += [Comparison("orders", "GET /b", SHADOW, ("$.at",)) for _ in range(10)]
    write(path, rows)
    assert store.summary(path, "orders").differing == 0


def test_only_the_latest_comparisons_are_kept_and_examples_are_bounded(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    example = Example("$.total", "$.total", "GET /a", [], '"1"', '"2"')
    for _ in range(5):
        write(path, [Comparison("orders", "GET /a", SHADOW, ("$.total",), (example,))] * 100, 150)
    report = store.report(path, "orders")
    assert 150 <= report.summary.compared < 250  # trimmed every 100 writes
    assert len(report.endpoints[0].fields[0].examples) == store.EXAMPLES


def test_clear_forgets_one_route(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    write(path, [Comparison("orders", "GET /a", SHADOW, ()), Comparison("x", "GET /a", SHADOW, ())])
    assert store.clear(path, "orders") == 1
    assert store.summary(path, "orders").compared == 0
    assert store.summary(path, "x").compared == 1


def test_a_file_that_is_not_a_store_is_refused_untouched(tmp_path: Path) -> None:
    routing = tmp_path / "routing.yaml"
    routing.write_text("version: 1\n")
    with pytest.raises(store.NotAStore, match="store_file"):
        store.summary(routing, "orders")
    assert routing.read_text() == "version: 1\n"
