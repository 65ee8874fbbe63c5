"""Validation of routing.yaml: every problem named with file:line:column, key and remedy."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from facade.exceptions import RoutingFileError
from facade.routing.loader import load_table, parse_table
from facade.routing.model import SHARE_TOTAL, Target, alb_weights, shares_from_alb

ROOT = Path(__file__).resolve().parents[2]
BACKENDS = """
version: 1
backends:
  monolith: {kind: monolith, url: "http://127.0.0.1:8001"}
  orders: {kind: ecs, url: "http://127.0.0.1:8002"}
"""


def problems(routes_yaml: str, head: str = BACKENDS) -> list[str]:
    text = head + textwrap.dedent(routes_yaml)
    with pytest.raises(RoutingFileError) as caught:
        parse_table(text, "r.yaml")
    return [str(p) for p in caught.value.problems]


def test_the_sample_routing_file_is_valid() -> None:
    table = load_table(ROOT / "routing.yaml")
    assert table.default.targets[0].backend == "monolith"
    priorities = [r.priority for r in table.routes]
    assert priorities == sorted(set(priorities))


def test_an_unknown_backend_is_named_with_its_line_and_a_suggestion() -> None:
    found = problems("""
routes:
  - name: orders
    match: {paths: ["/api/orders/*"]}
    targets: {monolith: 90, ordres: 10}
""")
    assert found == [
        "r.yaml:10:29: routes[0] (orders).targets.ordres: no backend named 'ordres' "
        "(backends: monolith, orders); did you mean 'orders'?"
    ]


@pytest.mark.parametrize(
    ("targets", "message"),
    [
        ("{monolith: 90, orders: 20}", "percentages add up to 110; they must add up to 100"),
        ("{monolith: 150}", "150: a percentage from 0 to 100 in steps of 0.1"),
        ("{monolith: 99.95, orders: 0.05}", "a percentage from 0 to 100 in steps of 0.1"),
        ("{monolith: -1, orders: 101}", "a percentage from 0 to 100"),
    ],
)
def test_weights_must_be_percentages_alb_can_express(targets: str, message: str) -> None:
    found = problems(f"""
routes:
  - name: orders
    match: {{paths: ["/api/orders/*"]}}
    targets: {targets}
""")
    assert any(message in p for p in found), found


def test_at_most_five_target_groups_per_forward_action() -> None:
    head = (
        "version: 1\nbackends:\n  monolith: {kind: monolith, url: 'http://127.0.0.1:1'}\n"
        + "".join(f"  b{i}: {{kind: ecs, url: 'http://127.0.0.1:{i + 2}'}}\n" for i in range(5))
    )
    found = problems(
        """
routes:
  - name: wide
    match: {paths: ["/x/*"]}
    targets: {monolith: 50, b0: 10, b1: 10, b2: 10, b3: 10, b4: 10}
""",
        head,
    )
    assert any("6 targets; an ALB forward action takes at most 5" in p for p in found)


def test_path_pattern_limits() -> None:
    long_path = "/" + "a" * 128
    found = problems(f"""
routes:
  - name: long
    match: {{paths: ["{long_path}"]}}
    targets: monolith
  - name: chars
    match: {{paths: ["/api/<id>"]}}
    targets: monolith
  - name: relative
    match: {{paths: ["api/x"]}}
    targets: monolith
""")
    assert any("is 129 characters long; ALB allows at most 128" in p for p in found)
    assert any("contains '<', '>'" in p for p in found)
    assert any("must start with '/'" in p for p in found)


def test_condition_and_rule_evaluation_limits() -> None:
    found = problems("""
routes:
  - name: many-paths
    match: {paths: ["/a", "/b", "/c", "/d"]}
    targets: monolith
  - name: many-values
    match: {paths: ["/a/*", "/b/*"], methods: [GET, POST], headers: {X-A: [a, b]}}
    targets: monolith
  - name: many-wildcards
    match: {paths: ["/*/*/*", "/?/?/?"]}
    targets: monolith
""")
    assert any(
        "many-paths).match.paths: 4 values; ALB allows at most 3 per condition" in p for p in found
    )
    assert any("6 match values in one rule; ALB allows at most 5 per rule" in p for p in found)
    assert any("6 wildcards in one rule; ALB allows at most 5 per rule" in p for p in found)


def test_priorities_are_unique_increasing_and_in_alb_range() -> None:
    found = problems("""
routes:
  - name: a
    priority: 20
    match: {paths: ["/a"]}
    targets: monolith
  - name: b
    priority: 20
    match: {paths: ["/b"]}
    targets: monolith
  - name: c
    priority: 10
    match: {paths: ["/c"]}
    targets: monolith
  - name: d
    priority: 50001
    match: {paths: ["/d"]}
    targets: monolith
""")
    assert any("b).priority: 20 is already the priority of route 'a'" in p for p in found)
    assert any("c).priority: 10 must be greater than the previous route's (20)" in p for p in found)
    assert any("50001: ALB rule priorities are whole numbers 1-50000" in p for p in found)


def test_the_rules_per_load_balancer_quota() -> None:
    routes = "".join(
        f"  - name: r{i}\n    match: {{paths: ['/r{i}']}}\n    targets: monolith\n"
        for i in range(101)
    )
    found = problems("routes:\n" + routes)
    assert any("101 routes; an ALB listener has at most 100 rules" in p for p in found)
    # an account with a raised quota says so
    table = parse_table(BACKENDS + "facade: {max_rules: 200}\nroutes:\n" + routes)
    assert len(table.routes) == 101


def test_stickiness_and_names_and_unknown_keys() -> None:
    found = problems("""
routes:
  - name: Orders
    match: {paths: ["/a"]}
    targets: monolith
    stickiness: {duration: 700000}
  - name: b
    match: {paths: ["/b"]}
    target: monolith
""")
    assert any("duration 700000: whole seconds from 1 to 604800" in p for p in found)
    assert any("'Orders': every route needs a name of 1-32 lower-case" in p for p in found)
    assert any(
        "routes[1].target: unknown key; allowed:" in p and "did you mean 'targets'" in p
        for p in found
    )
    assert any("routes[1] (b).targets: is required" in p for p in found)


def test_a_yaml_syntax_error_is_reported_with_its_position() -> None:
    with pytest.raises(RoutingFileError) as caught:
        parse_table("backends:\n  monolith: {kind: monolith\n", "r.yaml")
    [problem] = caught.value.problems
    assert problem.file == "r.yaml"
    assert problem.line >= 2
    assert "not valid YAML" in problem.message


def test_a_monolith_backend_is_required() -> None:
    found = problems("", "version: 1\nbackends:\n  svc: {kind: ecs, url: 'http://127.0.0.1:1'}\n")
    assert any("declare the monolith" in p for p in found)


@pytest.mark.parametrize("share", range(SHARE_TOTAL + 1))
def test_alb_weights_read_back_as_the_same_percentages(share: int) -> None:
    targets = (Target("new", share), Target("monolith", SHARE_TOTAL - share))
    weights = alb_weights(targets)
    assert all(0 <= w <= 999 for w in weights)
    assert shares_from_alb(weights) == (share, SHARE_TOTAL - share)


def test_alb_weights_of_three_targets() -> None:
    targets = (Target("a", 333), Target("b", 333), Target("c", 334))
    assert alb_weights(targets) == (333, 333, 334)
    assert shares_from_alb(alb_weights(targets)) == (333, 333, 334)
    assert alb_weights((Target("a", 250), Target("b", 750))) == (1, 3)


def test_facade_limits_admin_listener_and_cookie_secret_are_read() -> None:
    table = parse_table(
        BACKENDS
        + textwrap.dedent("""
        facade:
          limits: {header: 8192, header_count: 50, idle_timeout: 120, pipeline: 4}
          admin: {listen: "127.0.0.1:0"}
          cookie_secret: {env: SHOP_COOKIE_SECRET, file: var/cookie-secret}
        routes: []
        default: monolith
        """),
        "r.yaml",
    )
    settings = table.settings
    assert (settings.limits.header, settings.limits.header_count) == (8192, 50)
    assert (settings.limits.idle_timeout, settings.limits.pipeline) == (120.0, 4)
    assert settings.limits.headers == 64 * 1024  # untouched: ALB's quota
    assert (settings.admin_host, settings.admin_port) == ("127.0.0.1", 0)
    assert (settings.cookie_secret_env, settings.cookie_secret_file) == (
        "SHOP_COOKIE_SECRET",
        "var/cookie-secret",
    )


def test_facade_limits_are_checked_against_albs_quotas() -> None:
    found = problems("""
facade:
  limits:
    header: 20000
    headers: 1.5
    idle_timeout: 0
    pipeline: true
    bodies: 3
  admin: {listen: "nowhere"}
routes: []
default: monolith
""")
    assert found == [
        "r.yaml:9:13: facade.limits.header: 20000: a whole number from 1024 to 16384",
        "r.yaml:10:14: facade.limits.headers: 1.5: a whole number from 4096 to 65536",
        "r.yaml:11:19: facade.limits.idle_timeout: 0: seconds from 1 to 4000",
        "r.yaml:12:15: facade.limits.pipeline: True: a whole number from 1 to 1000",
        "r.yaml:13:5: facade.limits.bodies: unknown key; allowed: request_line, header, "
        "headers, header_count, header_timeout, idle_timeout, connections, pipeline",
        "r.yaml:14:19: facade.admin.listen: 'nowhere': use HOST:PORT, e.g. 127.0.0.1:9901 "
        "(port 0: any)",
    ]


def test_a_deny_rule_takes_what_albs_fixed_response_takes() -> None:
    table = parse_table(
        BACKENDS
        + textwrap.dedent("""
        routes:
          - name: internal
            match: {paths: ["/internal/*"]}
            fixed_response: {status: 403, content_type: text/html, body: "<h1>no</h1>"}
        default: monolith
        """),
        "r.yaml",
    )
    fixed = table.routes[0].fixed
    assert fixed is not None
    assert (fixed.status, fixed.content_type, fixed.body) == (403, "text/html", "<h1>no</h1>")
    assert table.routes[0].targets == ()
    found = problems("""
routes:
  - name: a
    match: {paths: ["/a/*"]}
    fixed_response: {status: 302, content_type: image/png, body: 1}
  - name: b
    match: {paths: ["/b/*"]}
    targets: monolith
    fixed_response: {status: 404}
default: monolith
""")
    assert found == [
        "r.yaml:10:30: routes[0] (a).fixed_response.status: 302: an HTTP status ALB can "
        "answer (2XX, 4XX or 5XX)",
        "r.yaml:10:49: routes[0] (a).fixed_response.content_type: 'image/png': ALB allows "
        "text/plain, text/css, text/html, application/javascript, application/json",
        "r.yaml:10:66: routes[0] (a).fixed_response.body: a string of at most 1024 "
        "characters (ALB's limit)",
        "r.yaml:14:21: routes[1] (b).fixed_response: a route answers either a fixed response "
        "or forwards to targets (with stickiness or stable_key), not both",
    ]
