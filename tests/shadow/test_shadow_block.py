"""routing.yaml's shadow block: parsed into ``Shadow``, every problem named with
file:line:column, key and what is allowed."""

from __future__ import annotations

import textwrap

import pytest

from facade.exceptions import RoutingFileError
from facade.routing.loader import parse_table
from facade.routing.model import SAFE_METHODS, NormalizeKind, Normalizer, Shadow

HEAD = """\
version: 1
backends:
  monolith: {kind: monolith, url: "http://127.0.0.1:8001"}
  orders: {kind: ecs, url: "http://127.0.0.1:8002"}
routes:
  - name: orders
    match: {paths: ["/api/orders/*"]}
    targets: {monolith: 100}
"""


def shadow_of(block: str) -> Shadow | None:
    return (
        parse_table(HEAD + textwrap.indent(textwrap.dedent(block), "    "), "r.yaml")
        .routes[0]
        .shadow
    )


def problems(block: str) -> list[str]:
    with pytest.raises(RoutingFileError) as caught:
        shadow_of(block)
    return [str(p) for p in caught.value.problems]


def test_a_minimal_block_copies_every_safe_request_with_the_documented_caps() -> None:
    assert shadow_of("shadow: {to: orders}") == Shadow(backend="orders")
    assert Shadow(backend="orders").methods == SAFE_METHODS == ("GET", "HEAD", "OPTIONS")


def test_every_setting_is_read() -> None:
    found = shadow_of("""\
        shadow:
          to: orders
          percent: 12.5
          methods: [GET, POST]
          writes: true
          noise: 50
          max_concurrent: 4
          timeout: 1.5
          max_body_bytes: 2048
          compare:
            headers: [Content-Type, ETag]
            ignore: [$..request_id]
            sets: [$.tags]
            normalize: {$.created_at: timestamp, $.id: uuid, $.total: {number: 0.01}}
          thresholds: {relative: 10, absolute: 1}
          redact: [Address]
          store: var/other.sqlite3
          keep: 500
        """)
    assert found == Shadow(
        backend="orders", share=125, methods=("GET", "POST"), writes=True, noise=500,
        max_concurrent=4, timeout=1.5, max_body_bytes=2048, headers=("content-type", "etag"),
        ignore=("$..request_id",), sets=("$.tags",),
        normalize=(
            Normalizer("$.created_at", NormalizeKind.TIMESTAMP),
            Normalizer("$.id", NormalizeKind.UUID),
            Normalizer("$.total", NormalizeKind.NUMBER, 0.01),
        ),
        relative=0.1, absolute=0.01, redact=("address",), store="var/other.sqlite3", keep=500,
    )  # fmt: skip


def test_a_write_needs_the_explicit_opt_in() -> None:
    assert problems("shadow: {to: orders, methods: [GET, PATCH]}") == [
        "r.yaml:9:35: routes[0] (orders).shadow.methods: PATCH is a write: it is mirrored "
        "only with `writes: true`, once the backend 'orders' answers X-Strangler-Shadow: "
        "write without side effects"
    ]


PROBLEMS = [
    ("{to: ordres}", "shadow.to: 'ordres': the backend receiving copies; monolith, orders"),
    ("{to: orders, percent: 101}", "shadow.percent: 101: a percentage from 0 to 100"),
    ("{to: orders, timeout: 0}", "shadow.timeout: 0: seconds from 0.01 to 900"),
    ("{to: orders, max_concurrent: 1.5}", "shadow.max_concurrent: 1.5: a whole number"),
    ("{to: orders, writes: yes please}", "shadow.writes: 'yes please': true or false"),
    ("{to: orders, compare: {ignore: [request_id]}}", "'request_id': a JSON path from $"),
    ("{to: orders, compare: {normalize: {$.at: clock}}}", "'clock': one of timestamp, uuid"),
    ("{to: orders, thresholds: {relative: -1}}", "thresholds.relative: -1: percent from 0"),
    ("{to: orders, mirror: 5}", "shadow.mirror: unknown key; allowed: to, percent"),
]


@pytest.mark.parametrize(("block", "message"), PROBLEMS)
def test_problems_are_named_with_their_place_and_what_is_allowed(block: str, message: str) -> None:
    (found,) = problems(f"shadow: {block}")
    assert found.startswith("r.yaml:9:")
    assert message in found


def test_a_fixed_response_has_nothing_to_shadow() -> None:
    text = HEAD.replace("targets: {monolith: 100}", "fixed_response: {status: 404}")
    with pytest.raises(RoutingFileError) as caught:
        parse_table(text + "    shadow: {to: orders}\n", "r.yaml")
    assert "a fixed response has nothing to shadow" in str(caught.value)
