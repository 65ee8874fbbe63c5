"""Fault injection: a backend's ``faults`` in routing.yaml, the admin API and the CLI,
carried out by the real facade in front of real upstream servers, and never rendered
for AWS."""

from __future__ import annotations

import contextlib
import json
import random
import re
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from facade.aws import alb, apigw, cloudformation, ecs, sam
from facade.cli import cli
from facade.exceptions import ConfigError, RoutingFileError
from facade.routing.edit import set_faults
from facade.routing.loader import load_table, parse_table
from facade.routing.model import Faults
from tests.facade.proxy import proxy
from tests.facade.rawhttp import InProcessFacade, facade_in_process
from tests.facade.upstream import Upstream, upstream

REPO = Path(__file__).resolve().parents[2]
ADMIN_TOKEN = "test-admin-token-faults"
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def routing_text(mono: Upstream, new: Upstream, *, split: str, new_faults: str = "") -> str:
    faults = f", faults: {new_faults}" if new_faults else ""
    return f"""\
version: 1
facade:
  timeouts: {{connect: 1, read: 5}}
  admin: {{token_env: TEST_STRANGLER_ADMIN}}
  audit_log: audit.jsonl
backends:
  monolith: {{kind: monolith, url: "{mono.url}"}}
  new: {{kind: ecs, url: "{new.url}"{faults}}}
routes:
  - name: api
    match: {{paths: ["/api/*"]}}
    targets: {split}
default: monolith
"""


@pytest.fixture
def backends() -> Iterator[tuple[Upstream, Upstream]]:
    with upstream("monolith") as mono, upstream("new") as new:
        yield mono, new


@contextlib.contextmanager
def _in_process(
    tmp_path: Path,
    backends: tuple[Upstream, Upstream],
    *,
    split: str,
    new_faults: str,
    seed: int = 7,
) -> Iterator[InProcessFacade]:
    """The facade in this process, its fault injector drawing from a seeded generator."""
    path = tmp_path / "routing.yaml"
    path.write_text(routing_text(*backends, split=split, new_faults=new_faults))
    with facade_in_process(path) as running:
        seeded = random.Random(seed).random
        running.call(lambda: setattr(running.facade.faults, "random", seeded))
        yield running


def _metrics(running: InProcessFacade) -> str:
    payload, _ = running.facade.metrics.render()
    return payload.decode()


def _sample(metrics: str, name: str, **labels: str) -> float:
    shown = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    match = re.search(rf"^{name}\{{{re.escape(shown)}\}} (\S+)$", metrics, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


# -- routing.yaml -----------------------------------------------------------------------


def test_faults_are_read_into_the_backend_and_a_block_of_zeros_is_no_faults() -> None:
    text = """\
version: 1
backends:
  monolith: {kind: monolith, url: "http://127.0.0.1:9"}
  new:
    kind: ecs
    url: "http://127.0.0.1:8"
    faults: {abort: {percent: 10.5, status: 500}, delay: {percent: 50, seconds: 0.2}}
  idle: {kind: ecs, url: "http://127.0.0.1:7", faults: {abort: {percent: 0}}}
routes: []
default: monolith
"""
    backends = parse_table(text).backends
    assert backends["new"].faults == Faults(105, 500, 500, 0.2)
    assert backends["new"].faults.as_dict() == {
        "abort": {"percent": 10.5, "status": 500},
        "delay": {"percent": 50, "seconds": 0.2},
    }
    assert backends["idle"].faults is None  # injects nothing: the hot path skips it
    assert backends["monolith"].faults is None


def test_invalid_faults_are_refused_with_file_line_column_and_what_is_allowed() -> None:
    text = """\
version: 1
facade: {timeouts: {read: 2, lambda: 1}}
backends:
  monolith: {kind: monolith, url: "http://127.0.0.1:9"}
  new:
    kind: ecs
    url: "http://127.0.0.1:8"
    faults:
      abort: {percent: 10.05, status: 700}
      delay: {percent: 101, seconds: 2}
      stall: yes
  fn:
    kind: lambda
    handler: "x.y:z"
    faults: {delay: {percent: 5, seconds: 1}, abort: {status: 503}}
  other: {kind: ecs, url: "http://127.0.0.1:7", faults: {delay: {percent: 5, seconds: -1}}}
routes: []
default: monolith
"""
    with pytest.raises(RoutingFileError) as caught:
        parse_table(text, "r.yaml")
    found = [str(p) for p in caught.value.problems]
    assert found == [
        "r.yaml:9:24: backends.new.faults.abort.percent: 10.05: a percentage from 0 to 100 "
        "in steps of 0.1",
        "r.yaml:9:39: backends.new.faults.abort.status: 700: an HTTP status from 200 to 599",
        "r.yaml:10:24: backends.new.faults.delay.percent: 101: a percentage from 0 to 100 "
        "in steps of 0.1",
        "r.yaml:10:38: backends.new.faults.delay.seconds: 2: seconds, at least 0 and less "
        "than facade.timeouts.read (2)",
        "r.yaml:11:7: backends.new.faults.stall: unknown key; allowed: abort, delay",
        # an in-process Lambda handler runs under the lambda timeout, not the read timeout
        "r.yaml:15:43: backends.fn.faults.delay.seconds: 1: seconds, at least 0 and less "
        "than facade.timeouts.lambda (1)",
        "r.yaml:15:54: backends.fn.faults.abort.percent: is required: the percent of requests hit",
        "r.yaml:16:87: backends.other.faults.delay.seconds: -1: seconds, at least 0 and "
        "less than facade.timeouts.read (2)",
    ]


def test_nothing_generated_for_aws_carries_faults(tmp_path: Path) -> None:
    """Faults are a local testing aid: the ALB, SAM, ECS and API Gateway outputs of the
    sample are the same bytes with faults on every backend as without."""

    def rendered(path: Path) -> list[str]:
        table = load_table(path)
        documents = [
            cloudformation.template(alb.desired(table), "routing.yaml"),
            sam.template(table, "routing.yaml", None),
            ecs.template(table, "routing.yaml"),
            apigw.template(table, "routing.yaml"),
            apigw.openapi(table, listener="L", vpc_link="V", region="R", account="A"),
        ]
        return [cloudformation.dump(d, "yaml") for d in documents]

    plain = tmp_path / "routing.yaml"
    plain.write_text((REPO / "routing.yaml").read_text())
    faulty = tmp_path / "faulty" / "routing.yaml"
    faulty.parent.mkdir()
    faulty.write_text(plain.read_text())
    for name in load_table(faulty).backends:
        block = {"abort": {"percent": 50, "status": 503}, "delay": {"percent": 10, "seconds": 0.1}}
        set_faults(faulty, name, block, audit_log=tmp_path / "audit.jsonl")
    assert all(b.faults for b in load_table(faulty).backends.values())
    with_faults = rendered(faulty)
    assert with_faults == rendered(plain)
    assert not any(re.search(r"\bfaults?\b", text, re.IGNORECASE) for text in with_faults)


# -- the facade -------------------------------------------------------------------------


def test_an_abort_percentage_is_honoured_and_counted_against_the_backend(
    tmp_path: Path, backends: tuple[Upstream, Upstream]
) -> None:
    """10 % of 2,000 requests (seeded): within 4 standard deviations of 200, each abort
    answered in the backend's name without reaching it, each counted as its 5xx."""
    mono, new = backends
    with _in_process(
        tmp_path, backends, split="new", new_faults="{abort: {percent: 10, status: 503}}"
    ) as running:
        statuses: Counter[int] = Counter()
        with httpx.Client(base_url=f"http://127.0.0.1:{running.port}", timeout=10) as client:
            for _ in range(2000):
                response = client.get("/api/x")
                assert response.headers["x-strangler-backend"] == "new"
                statuses[response.status_code] += 1
                if response.status_code == 503:
                    error = response.json()["error"]
                    assert (error["code"], error["backend"], error["route"]) == (
                        "fault_injected",
                        "new",
                        "api",
                    )
        aborted = statuses[503]
        assert set(statuses) == {200, 503}
        assert 200 - 4 * 13.5 < aborted < 200 + 4 * 13.5, statuses  # sd = sqrt(2000*.1*.9)
        assert len(new.received) == 2000 - aborted
        assert mono.received == []
        metrics = _metrics(running)
        where = {"backend": "new", "route": "api"}
        assert _sample(metrics, "strangler_facade_responses_total", **where,
                       status_class="5xx") == aborted  # fmt: skip
        assert _sample(metrics, "strangler_facade_responses_total", **where,
                       status_class="2xx") == 2000 - aborted  # fmt: skip
        assert _sample(metrics, "strangler_facade_request_duration_seconds_count", **where) == 2000
        assert _sample(metrics, "strangler_facade_faults_injected_total", **where,
                       fault="abort") == aborted  # fmt: skip
        assert _sample(metrics, "strangler_facade_upstream_errors_total", **where,
                       kind="fault_injected") == 0  # fmt: skip


def test_a_full_abort_never_reaches_the_backend(
    tmp_path: Path, backends: tuple[Upstream, Upstream]
) -> None:
    mono, new = backends
    with _in_process(
        tmp_path, backends, split="new", new_faults="{abort: {percent: 100, status: 429}}"
    ) as running:
        with httpx.Client(base_url=f"http://127.0.0.1:{running.port}", timeout=10) as client:
            for method in ("GET", "POST", "HEAD", "DELETE") * 10:
                response = client.request(method, "/api/x", content=b"body")
                assert response.status_code == 429
                assert response.headers["x-strangler-backend"] == "new"
                assert response.headers["x-strangler-route"] == "api"
            assert client.get("/elsewhere").status_code == 200  # the monolith: no faults
        assert new.received == []
        assert mono.received == ["/elsewhere"]


def test_faults_hit_only_the_requests_that_chose_their_backend(
    tmp_path: Path, backends: tuple[Upstream, Upstream]
) -> None:
    """Faults act after the routing decision: at 50/50 with every request to ``new``
    aborted, every monolith answer is whole; at 100/0 nothing is aborted at all."""
    with _in_process(
        tmp_path,
        backends,
        split="{monolith: 50, new: 50}",
        new_faults="{abort: {percent: 100, status: 503}}",
    ) as running:
        seen: Counter[tuple[str, int]] = Counter()
        with httpx.Client(base_url=f"http://127.0.0.1:{running.port}", timeout=10) as client:
            for _ in range(200):
                response = client.get("/api/x")
                seen[response.headers["x-strangler-backend"], response.status_code] += 1
        assert set(seen) == {("monolith", 200), ("new", 503)}, seen
    with _in_process(
        tmp_path,
        backends,
        split="{monolith: 100, new: 0}",
        new_faults="{abort: {percent: 100}, delay: {percent: 100, seconds: 4}}",
    ) as running:
        with httpx.Client(base_url=f"http://127.0.0.1:{running.port}", timeout=10) as client:
            assert {client.get("/api/x").status_code for _ in range(50)} == {200}
        assert running.facade.metrics.faults == {}


def test_a_delay_holds_the_request_on_a_timer_while_others_are_answered(
    tmp_path: Path, backends: tuple[Upstream, Upstream]
) -> None:
    _, new = backends
    with _in_process(
        tmp_path, backends, split="new", new_faults="{delay: {percent: 100, seconds: 3}}"
    ) as running:
        url = f"http://127.0.0.1:{running.port}"
        with ThreadPoolExecutor(1) as pool, httpx.Client(base_url=url, timeout=10) as client:
            started = time.monotonic()
            held = pool.submit(httpx.get, f"{url}/api/held", timeout=10)
            deadline = time.monotonic() + 5
            while not running.call(lambda: running.facade.metrics.faults):
                assert time.monotonic() < deadline, "the request was never delayed"
            # the facade's only thread answers others while the delayed request waits
            assert client.get("/elsewhere").status_code == 200
            assert not held.done()
            assert new.received == []  # held before it is forwarded
            response = held.result(timeout=10)
            elapsed = time.monotonic() - started
        assert response.status_code == 200
        assert response.json()["backend"] == "new"
        assert elapsed >= 3
        assert new.received == ["/api/held"]
        metrics = _metrics(running)
        where = {"backend": "new", "route": "api"}
        assert _sample(metrics, "strangler_facade_faults_injected_total", **where,
                       fault="delay") == 1  # fmt: skip
        # the latency histogram of the backend includes the delay
        assert _sample(metrics, "strangler_facade_request_duration_seconds_sum", **where) >= 3
        assert _sample(metrics, "strangler_facade_request_duration_seconds_bucket", **where,
                       le="2.5") == 0  # fmt: skip


# -- the admin API and the CLI ----------------------------------------------------------


def test_the_admin_api_sets_and_clears_faults_for_every_worker_behind_its_token(
    tmp_path: Path, backends: tuple[Upstream, Upstream]
) -> None:
    path = tmp_path / "routing.yaml"
    path.write_text(routing_text(*backends, split="new"))
    env = {"TEST_STRANGLER_ADMIN": ADMIN_TOKEN}
    block = {"abort": {"percent": 100, "status": 503}}
    with proxy(path, workers=2, env=env) as facade, facade.admin() as admin:
        assert admin.put("/__facade/admin/faults/new", json=block).status_code == 401
        wrong = {"Authorization": "Bearer nope"}
        assert admin.put("/__facade/admin/faults/new", json=block, headers=wrong).status_code == 401
        assert admin.delete("/__facade/admin/faults/new").status_code == 401
        assert admin.get("/__facade/admin/faults").status_code == 401
        assert load_table(path).backends["new"].faults is None  # nothing was written

        put = admin.put("/__facade/admin/faults/new", json=block, headers=AUTH)
        assert put.status_code == 200, put.text
        assert put.json()["after"] == block
        assert "faults: {abort: {percent: 100, status: 503}}" in path.read_text()
        listed = admin.get("/__facade/admin/faults", headers=AUTH).json()
        assert listed["faults"] == {"new": block}
        routes = admin.get("/__facade/admin/routes", headers=AUTH).json()
        assert routes["backends"]["new"]["faults"] == block

        with facade.client() as client:
            deadline = time.monotonic() + 5
            # both workers take the file: 20 answers in a row (new connections) are aborts
            while sum(client.get("/api/x", headers={"connection": "close"}).status_code == 503
                      for _ in range(20)) < 20:  # fmt: skip
                assert time.monotonic() < deadline, "a worker never took the faults"

            cleared = admin.delete("/__facade/admin/faults/new", headers=AUTH)
            assert cleared.status_code == 200, cleared.text
            assert (cleared.json()["before"], cleared.json()["after"]) == (block, {})
            assert "faults" not in path.read_text()
            deadline = time.monotonic() + 5
            while sum(client.get("/api/x", headers={"connection": "close"}).status_code == 200
                      for _ in range(20)) < 20:  # fmt: skip
                assert time.monotonic() < deadline, "a worker kept the faults"

        bad = admin.put(
            "/__facade/admin/faults/new", json={"abort": {"percent": 150}}, headers=AUTH
        )
        assert bad.status_code == 400
        assert re.search(
            r"routing\.yaml:\d+:\d+: backends\.new\.faults\.abort\.percent: 150: a percentage",
            bad.json()["error"]["message"],
        )
        unknown = admin.put("/__facade/admin/faults/nope", json=block, headers=AUTH)
        assert unknown.status_code == 400
        assert "no backend named 'nope'" in unknown.json()["error"]["message"]
        shapeless = admin.put("/__facade/admin/faults/new", json={"abort": 5}, headers=AUTH)
        assert shapeless.status_code == 400
        assert "faults" not in path.read_text()

    audit = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    assert [(e["who"], e["action"], e["backend"], e["after"]) for e in audit] == [
        ("admin-api", "faults", "new", block),
        ("admin-api", "faults", "new", {}),
    ]


def test_the_cli_sets_shows_and_clears_faults_through_the_same_edit(tmp_path: Path) -> None:
    path = tmp_path / "routing.yaml"
    with upstream("monolith") as mono, upstream("new") as new:
        path.write_text(routing_text(mono, new, split="new"))
    runner = CliRunner()
    args = ["-f", str(path)]
    result = runner.invoke(
        cli, ["fault", "set", "new", "--abort", "10", "--status", "500", "--delay-percent",
              "50", "--delay", "0.2", *args],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.output == "faults new: none → abort 10% with 500, delay 50% by 0.2s\n"
    assert load_table(path).backends["new"].faults == Faults(100, 500, 500, 0.2)
    shown = runner.invoke(cli, ["fault", "show", "--json", *args])
    assert json.loads(shown.output)["faults"] == {
        "new": {"abort": {"percent": 10, "status": 500}, "delay": {"percent": 50, "seconds": 0.2}}
    }
    validated = runner.invoke(cli, ["validate", str(path)])
    assert "faults (local facade only): new" in validated.output

    # ``set`` replaces the whole block: what is not given is not injected
    runner.invoke(cli, ["fault", "set", "new", "--delay", "0.1", *args])
    assert load_table(path).backends["new"].faults == Faults(0, 503, 1000, 0.1)

    too_long = runner.invoke(cli, ["fault", "set", "new", "--delay", "9", *args])
    assert too_long.exit_code != 0
    with pytest.raises(ConfigError, match=r"less than facade\.timeouts\.read \(5\)"):
        set_faults(path, "new", {"delay": {"percent": 100, "seconds": 9}})
    assert runner.invoke(cli, ["fault", "set", "new", *args]).exit_code == 2  # nothing given

    cleared = runner.invoke(cli, ["fault", "clear", "new", "--json", *args])
    assert json.loads(cleared.output)["after"] == {}
    assert load_table(path).backends["new"].faults is None
    again = runner.invoke(cli, ["fault", "clear", "new", *args])
    assert again.output.endswith("(already so: nothing written)\n")
