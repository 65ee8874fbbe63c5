"""The comparison of one pair, the noise judgement, redaction and JSON path patterns:
pure and fast."""

from __future__ import annotations

import json
from typing import Any

import pytest

from facade.routing.model import NormalizeKind, Normalizer, Shadow
from facade.shadow import jsonpath
from facade.shadow.compare import Answer, compare, endpoint
from facade.shadow.noise import Rates, is_real
from facade.shadow.redact import REDACTED, Redactor

JSON = (("content-type", "application/json"),)


def fields(a: Any, b: Any, **rules: Any) -> list[str]:
    one = Answer(200, JSON, json.dumps(a).encode())
    other = Answer(200, JSON, json.dumps(b).encode())
    return sorted(d.field for d in compare(one, other, Shadow("x", **rules)))


def test_json_is_compared_by_path_with_array_positions_collapsed() -> None:
    a = {"items": [{"sku": 1, "qty": 1}, {"sku": 2, "qty": 1}], "total": "10.00"}
    b = {"items": [{"sku": 1, "qty": 2}, {"sku": 2, "qty": 3}], "total": "10.00", "extra": 1}
    assert fields(a, b) == ["$.extra", "$.items[*].qty"]


def test_arrays_by_position_unless_declared_sets() -> None:
    assert fields({"tags": ["a", "b"]}, {"tags": ["b", "a"]}) == ["$.tags[*]"]
    assert fields({"tags": ["a", "b"]}, {"tags": ["b", "a"]}, sets=("$.tags",)) == []
    assert fields({"tags": ["a", "b"]}, {"tags": ["a"]}, sets=("$.tags",)) == ["$.tags"]
    assert fields({"tags": ["a", "b"]}, {"tags": ["a"]}) == ["$.tags[*]"]


def test_numbers_compare_by_value_and_never_equal_booleans() -> None:
    assert fields({"n": 1}, {"n": 1.0}) == []
    assert fields({"n": 1}, {"n": True}) == ["$.n"]
    assert fields({"n": "1"}, {"n": 1}) == ["$.n"]


def test_ignores_and_normalisers() -> None:
    a = {"meta": {"request_id": "a"}, "at": "2024-01-01T00:00:00Z", "id": "0" * 32, "t": "9.99"}
    b = {"meta": {"request_id": "b"}, "at": "2025-06-01T12:00:00+02:00", "id": "f" * 32, "t": 10}
    assert fields(a, b) == ["$.at", "$.id", "$.meta.request_id", "$.t"]
    rules = {
        "ignore": ("$.meta",),
        "normalize": (
            Normalizer("$.at", NormalizeKind.TIMESTAMP),
            Normalizer("$.id", NormalizeKind.UUID),
            Normalizer("$.t", NormalizeKind.NUMBER, 0.01),
        ),
    }
    assert fields(a, b, **rules) == []
    assert fields(a, {**b, "t": 10.02, "at": "not a time"}, **rules) == ["$.at", "$.t"]


def test_status_chosen_headers_and_non_json_bodies() -> None:
    one = Answer(200, (("content-type", "text/html"), ("vary", "Cookie")), b"<p>a</p>")
    other = Answer(404, (("content-type", "text/html"),), b"<p>b</p>")
    found = compare(one, other, Shadow("x", headers=("content-type", "vary")))
    assert [d.field for d in found] == ["status", "header:vary", "body"]
    assert found[2].primary.startswith('"sha256:')


def test_endpoints_collapse_ids() -> None:
    assert endpoint("GET", "/api/orders/1234/") == "GET /api/orders/{id}/"
    uuid = "123e4567-e89b-12d3-a456-426614174000"
    assert endpoint("GET", f"/api/carts/{uuid}/items") == "GET /api/carts/{id}/items"
    assert endpoint("GET", "/api/orders/") == "GET /api/orders/"


@pytest.mark.parametrize(
    ("rates", "real"),
    [
        (Rates(10, 100, 0, 100), True),  # 10 % against no noise
        (Rates(100, 100, 100, 100), False),  # differs as much between two primaries
        (Rates(11, 100, 10, 100), False),  # 10 % above the noise: under the 20 % relative
        (Rates(13, 100, 10, 100), True),  # 30 % above it
        (Rates(2, 10_000, 0, 100), False),  # 0.02 %: under the 0.03 % absolute
        (Rates(4, 10_000, 0, 100), True),  # 0.04 %
    ],
)
def test_a_field_is_real_only_beyond_both_of_diffys_thresholds(rates: Rates, real: bool) -> None:
    assert is_real(rates) is real


def test_redaction_of_headers_queries_and_fragments() -> None:
    redactor = Redactor(("address",))
    kept = redactor.headers([("Authorization", "Bearer abc"), ("accept", "text/html")])
    assert kept == [("accept", "text/html")]
    assert redactor.query("access_token=abc&q=me@x.io&page=2") == (
        f"access_token={REDACTED}&q={REDACTED}&page=2"
    )
    assert redactor.fragment("$.customer.email", '"a@b.co"') == json.dumps(REDACTED)
    assert redactor.fragment("$.home_address", '"1 Road"') == json.dumps(REDACTED)
    assert json.loads(redactor.fragment("$.c", '{"phone": "1", "id": 2, "jwt": "x"}')) == {
        "phone": REDACTED,
        "id": 2,
        "jwt": "x",
    }
    jwt = "eyJhbGciOiJI.eyJzdWIiOiIx.c2lnbmF0dXJl"
    assert redactor.text(f"token {jwt} and Bearer 0123456789") == f"{REDACTED} and {REDACTED}"


def test_json_path_patterns() -> None:
    assert jsonpath.matches(("$.meta",), "$.meta.request_id")
    assert not jsonpath.matches(("$.meta",), "$.metadata")
    assert jsonpath.matches(("$..updated_at",), "$.items[*].updated_at")
    assert jsonpath.matches(("$.*.id",), "$.customer.id")
    assert not jsonpath.matches(("$.*.id",), "$.a.b.id")
    assert jsonpath.member("$", "odd key") == '$["odd key"]'
    assert jsonpath.matches(('$["odd key"]',), '$["odd key"]')
    assert jsonpath.problem("$.a[*].b") is None
    assert jsonpath.problem("a.b") is not None
