"""``strangler serve`` end to end: real backends on port 0, the proxy as a real process."""

from __future__ import annotations

import contextlib
import json
import socket
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from facade.routing.edit import apply_edit
from tests.facade.proxy import Proxy, proxy
from tests.facade.upstream import Upstream, upstream

ADMIN_TOKEN = "test-admin-token-1234"


def routing_text(
    mono: Upstream,
    new: Upstream,
    *,
    split: str = "{monolith: 90, new: 10}",
    extra: str = "",
    override: bool = False,
    read_timeout: float = 5,
) -> str:
    return f"""\
version: 1
facade:
  override: {{enabled: {str(override).lower()}, header: X-Strangler-Backend-Override}}
  timeouts: {{connect: 1, read: {read_timeout}}}
  max_body_bytes: 1000
  admin: {{token_env: TEST_STRANGLER_ADMIN}}
  audit_log: audit.jsonl
backends:
  monolith: {{kind: monolith, url: "{mono.url}"}}
  new: {{kind: ecs, url: "{new.url}"}}
routes:
  - name: api
    match: {{paths: ["/api/*"]}}
    targets: {split}
{extra}
default: monolith
"""


@pytest.fixture(scope="module")
def backends() -> Iterator[tuple[Upstream, Upstream]]:
    with upstream("monolith") as mono, upstream("new") as new:
        yield mono, new


@pytest.fixture
def make_proxy(
    tmp_path: Path, backends: tuple[Upstream, Upstream]
) -> Iterator[Callable[..., Proxy]]:
    stack = contextlib.ExitStack()
    started: list[Proxy] = []

    def start(**kw: Any) -> Proxy:
        path = tmp_path / "routing.yaml"
        path.write_text(routing_text(*backends, **kw))
        env = {"TEST_STRANGLER_ADMIN": ADMIN_TOKEN}
        started.append(stack.enter_context(proxy(path, env=env)))
        return started[-1]

    with stack:
        yield start
    for facade in started:  # shown by pytest only when the test failed
        print(f"--- strangler serve output ---\n{facade.output.text}", file=sys.stderr)


def test_forwards_with_forwarding_headers_and_names_the_backend(
    make_proxy: Callable[..., Proxy],
) -> None:
    facade = make_proxy(split="new")
    with facade.client() as client:
        response = client.get("/api//x?q=1&q=2", headers={"X-Forwarded-For": "10.1.1.1"})
        assert response.status_code == 200
        assert response.headers["x-strangler-backend"] == "new"
        assert response.headers["x-strangler-route"] == "api"
        echo = response.json()
        assert echo["path"] == "/api/x?q=1&q=2"
        headers = dict(echo["headers"])
        assert headers["x-forwarded-for"] == "10.1.1.1, 127.0.0.1"
        assert headers["x-forwarded-proto"] == "http"
        assert headers["x-forwarded-host"] == facade.url.split("//")[1]
        assert headers["x-amzn-trace-id"].startswith("Root=1-")
        valid = "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1"
        passed = client.get("/api/y", headers={"X-Amzn-Trace-Id": valid}).json()
        assert dict(passed["headers"])["x-amzn-trace-id"] == valid
        # ALB keeps a well-formed Root and replaces anything else with one of its own
        forged = client.get("/api/y", headers={"X-Amzn-Trace-Id": "Root=1-abc-def"}).json()
        assert dict(forged["headers"])["x-amzn-trace-id"].startswith("Root=1-")
        assert dict(forged["headers"])["x-amzn-trace-id"] != "Root=1-abc-def"
        # a client's X-Forwarded-Host is not believed: it comes from Host
        spoofed = client.get("/api/y", headers={"X-Forwarded-Host": "evil.example"}).json()
        assert dict(spoofed["headers"])["x-forwarded-host"] == facade.url.split("//")[1]
        posted = client.post("/api/z", content=b"hello body").json()
        assert (posted["method"], posted["body"]) == ("POST", "hello body")
        assert client.get("/other").headers["x-strangler-backend"] == "monolith"


def test_hop_by_hop_headers_are_removed_both_ways(make_proxy: Callable[..., Proxy]) -> None:
    facade = make_proxy(split="new")
    with facade.client() as client:
        sent = client.get(
            "/api/x",
            headers={"Connection": "keep-alive, X-Secret", "X-Secret": "s", "TE": "trailers"},
        ).json()
        names = {name for name, _ in sent["headers"]}
        assert not names & {"x-secret", "te", "connection"}
        response = client.get("/hop")
        assert "x-private" not in response.headers
        assert "keep-alive" not in response.headers


def test_chunked_and_head_responses(make_proxy: Callable[..., Proxy]) -> None:
    facade = make_proxy(split="new")
    with facade.client() as client:
        chunked = client.get("/chunked")
        assert chunked.json()["path"] == "/chunked"
        head = client.head("/api/x")
        assert head.status_code == 200
        assert head.content == b""
        # the connection is still usable after a HEAD
        assert client.get("/api/after-head").json()["path"] == "/api/after-head"


def test_bad_paths_and_large_bodies_are_refused_before_any_backend(
    make_proxy: Callable[..., Proxy],
) -> None:
    facade = make_proxy()
    with socket.create_connection(("127.0.0.1", int(facade.url.rsplit(":", 1)[1]))) as sock:
        sock.sendall(b"GET /api/%2e%2e/admin HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 400 ")
    assert b'"code": "bad_path"' in answer
    with facade.client() as client:
        too_big = client.post("/api/x", content=b"x" * 1001)
        assert too_big.status_code == 413
        assert too_big.json()["error"]["code"] == "body_too_large"


def test_observed_split_matches_the_weights(make_proxy: Callable[..., Proxy]) -> None:
    """10,000 requests at 90/10: a chi-square test at p >= 0.001 (critical value 10.83)."""
    facade = make_proxy(split="{monolith: 90, new: 10}")
    counts: Counter[str] = Counter()

    def batch(_: int) -> Counter[str]:
        local: Counter[str] = Counter()
        with facade.client() as client:
            for _ in range(1000):
                local[client.get("/api/x").headers["x-strangler-backend"]] += 1
        return local

    with ThreadPoolExecutor(max_workers=10) as pool:
        for partial in pool.map(batch, range(10)):
            counts.update(partial)
    assert sum(counts.values()) == 10_000
    expected = {"monolith": 9000, "new": 1000}
    chi_square = sum((counts[k] - e) ** 2 / e for k, e in expected.items())
    assert chi_square < 10.83, counts


def test_sticky_cookie_pins_a_client_until_its_backend_loses_all_weight(
    make_proxy: Callable[..., Proxy], tmp_path: Path
) -> None:
    extra = (
        "  - name: sticky\n    match: {paths: ['/s/*']}\n"
        "    targets: {monolith: 50, new: 50}\n    stickiness: {duration: 600}\n"
    )
    facade = make_proxy(extra=extra)
    pinned: dict[str, int] = Counter()
    for _ in range(6):
        with facade.client() as client:
            first = client.get("/s/1")
            backend = first.headers["x-strangler-backend"]
            cookie = first.headers["set-cookie"]
            assert "Max-Age=600" in cookie
            assert cookie.startswith("STRANGLERTG-sticky=")
            for _ in range(20):
                again = client.get("/s/2")
                assert again.headers["x-strangler-backend"] == backend
                assert "set-cookie" not in again.headers
            pinned[backend] += 1
    with facade.client() as client:
        client.cookies.set("STRANGLERTG-sticky", "new.0000")
        forged = client.get("/s/1")
        assert "set-cookie" in forged.headers  # not accepted: a new choice is made
    # a client pinned to "new" goes back to the monolith as soon as "new" has no weight
    with facade.client() as client:
        while client.get("/s/1").headers["x-strangler-backend"] != "new":
            client.cookies.clear()
        apply_edit(facade.routing, "rollback", "sticky")
        deadline = time.monotonic() + 2
        while client.get("/s/1").headers["x-strangler-backend"] != "monolith":
            assert time.monotonic() < deadline, "rollback did not reach a sticky client"


def test_stable_key_keeps_users_in_place_and_moves_only_the_needed_ones(
    make_proxy: Callable[..., Proxy],
) -> None:
    extra = (
        "  - name: keyed\n    match: {paths: ['/k/*']}\n"
        "    targets: {monolith: 90, new: 10}\n    stable_key: {header: X-User-Id}\n"
    )
    facade = make_proxy(extra=extra)

    def assignment(client: httpx.Client) -> dict[str, str]:
        return {
            user: client.get("/k/x", headers={"X-User-Id": user}).headers["x-strangler-backend"]
            for user in (f"user-{i}" for i in range(400))
        }

    with facade.client() as client:
        before = assignment(client)
        assert assignment(client) == before  # stable across requests
        apply_edit(facade.routing, "shift", "keyed", backend="new", percent=30)
        deadline = time.monotonic() + 2
        while facade.health()["generation"] == 1:
            assert time.monotonic() < deadline
        after = assignment(client)
    assert all(after[u] == "new" for u, b in before.items() if b == "new")  # nobody flaps back
    moved = sum(1 for u in before if before[u] != after[u])
    share_new = sum(1 for b in after.values() if b == "new") / len(after)
    assert 0.10 < moved / len(before) < 0.30
    assert 0.22 < share_new < 0.38


@pytest.mark.parametrize("enabled", [False, True])
def test_override_header_works_only_when_enabled(
    make_proxy: Callable[..., Proxy], enabled: bool
) -> None:
    facade = make_proxy(split="{monolith: 100, new: 0}", override=enabled)
    with facade.client() as client:
        seen = {
            client.get("/api/x", headers={"X-Strangler-Backend-Override": "new"}).headers[
                "x-strangler-backend"
            ]
            for _ in range(20)
        }
    assert seen == ({"new"} if enabled else {"monolith"})


def test_a_silent_backend_gets_504_within_the_read_timeout(
    make_proxy: Callable[..., Proxy],
) -> None:
    facade = make_proxy(split="new", read_timeout=0.5)
    with facade.client() as client:
        started = time.monotonic()
        response = client.get("/api/../slow/3")
        elapsed = time.monotonic() - started
    assert response.status_code == 504
    assert response.json()["error"] == {
        "status": 504, "code": "timeout", "message": "the backend sent nothing for 0.5s",
        "route": "default", "backend": "monolith",
    }  # fmt: skip
    assert 0.5 <= elapsed < 1.5


def test_an_unreachable_backend_gets_502(make_proxy: Callable[..., Proxy], tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead_port = sock.getsockname()[1]  # closed when the block ends: nothing listens
    facade = make_proxy()
    text = facade.routing.read_text().replace(
        facade.routing.read_text().split('new: {kind: ecs, url: "')[1].split('"')[0],
        f"http://127.0.0.1:{dead_port}",
    )
    facade.routing.write_text(text.replace("{monolith: 90, new: 10}", "new"))
    deadline = time.monotonic() + 3
    with facade.client() as client:
        while True:
            response = client.get("/api/x")
            if response.status_code == 502:
                break
            assert time.monotonic() < deadline, response.text
    assert response.json()["error"]["code"] == "connect_failed"
    assert response.headers["x-strangler-backend"] == "new"


def test_twenty_flips_under_load_lose_no_request(make_proxy: Callable[..., Proxy]) -> None:
    facade = make_proxy(split="{monolith: 100, new: 0}")
    stop = time.monotonic() + 60
    flips_done = False
    failures: list[str] = []
    seen: Counter[str] = Counter()

    def hammer(_: int) -> int:
        sent = 0
        with facade.client() as client:
            while not flips_done and time.monotonic() < stop:
                try:
                    response = client.post("/api/x", content=b"payload")
                    if response.status_code != 200:
                        failures.append(f"{response.status_code} {response.text[:200]}")
                    seen[response.headers.get("x-strangler-backend", "?")] += 1
                except httpx.HTTPError as exc:
                    failures.append(repr(exc))
                sent += 1
        return sent

    with ThreadPoolExecutor(max_workers=8) as pool:
        futures = [pool.submit(hammer, i) for i in range(8)]
        with facade.client() as probe:
            for flip in range(20):
                target = "new" if flip % 2 == 0 else "monolith"
                apply_edit(facade.routing, "promote", "api", backend=target)
                applied_by = time.monotonic() + 1.0  # the proxy must apply it within 1 s
                while probe.get("/api/probe").headers["x-strangler-backend"] != target:
                    assert time.monotonic() < applied_by, f"flip {flip} not live after 1 s"
        flips_done = True
        total = sum(f.result() for f in futures)
    assert failures == []
    assert total > 200
    assert seen["new"] > 0
    assert seen["monolith"] > 0
    assert facade.health()["generation"] == 21


def test_an_invalid_file_is_refused_and_the_old_table_keeps_serving(
    make_proxy: Callable[..., Proxy],
) -> None:
    facade = make_proxy(split="new")
    good = facade.routing.read_text()
    facade.routing.write_text(good.replace("targets: new", "targets: {new: 60, monolith: 60}"))
    deadline = time.monotonic() + 3
    while facade.health()["last_reload_error"] is None:
        assert time.monotonic() < deadline
    health = facade.health()
    assert "add up to 120" in str(health["last_reload_error"])
    assert health["generation"] == 1
    with facade.client() as client:
        assert client.get("/api/x").headers["x-strangler-backend"] == "new"
    facade.output.wait_for("routing reload refused", timeout=5)


def test_admin_api_needs_its_token_and_edits_the_file(make_proxy: Callable[..., Proxy]) -> None:
    facade = make_proxy()
    with facade.admin() as client:
        assert client.get("/__facade/admin/routes").status_code == 401
        wrong = client.get("/__facade/admin/routes", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        routes = client.get("/__facade/admin/routes", headers=auth).json()
        assert routes["routes"][0]["targets"] == [
            {"backend": "monolith", "percent": 90.0},
            {"backend": "new", "percent": 10.0},
        ]
        shifted = client.post(
            "/__facade/admin/routes/api/shift", json={"to": "new", "percent": 40}, headers=auth
        )
        assert shifted.status_code == 200, shifted.text
        assert shifted.json()["after"] == {"monolith": 60.0, "new": 40.0}
        assert "targets: {monolith: 60, new: 40}" in facade.routing.read_text()
        audit = json.loads((facade.routing.parent / "audit.jsonl").read_text().splitlines()[-1])
        assert (audit["who"], audit["action"]) == ("admin-api", "shift")
        bad = client.post(
            "/__facade/admin/routes/api/shift", json={"to": "nope", "percent": 40}, headers=auth
        )
        assert bad.status_code == 400
        rollback = client.post("/__facade/admin/routes/api/rollback", headers=auth)
        assert rollback.json()["after"] == {"monolith": 100.0, "new": 0.0}


def test_the_public_listener_has_no_facade_endpoints(make_proxy: Callable[..., Proxy]) -> None:
    """Defect 11: health and metrics (pid, file path, reload errors) answered anyone."""
    facade = make_proxy()
    auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    with facade.client() as client:
        for path in ("/__facade/health", "/__facade/metrics", "/__facade/admin/routes"):
            response = client.get(path, headers=auth)
            assert response.status_code == 404, path
            assert "pid" not in response.text
        shifted = client.post(
            "/__facade/admin/routes/api/promote", json={"to": "new"}, headers=auth
        )
        assert shifted.status_code == 404
    assert facade.health()["status"] == "ok"  # on the admin listener
    with facade.admin() as admin:
        assert admin.get("/api/x").status_code == 404  # which proxies nothing


def _wait_for_a_lock_waiter(path: Path, timeout: float = 10) -> None:
    """Until some process is blocked on ``path``'s flock (a ``->`` line in /proc/locks)."""
    inode = f":{path.stat().st_ino} "
    deadline = time.monotonic() + timeout
    while not any(
        "->" in line and inode in line for line in Path("/proc/locks").read_text().splitlines()
    ):
        assert time.monotonic() < deadline, "nobody waits for the lock"
        time.sleep(0.01)


def test_an_admin_edit_waiting_for_the_file_lock_does_not_stop_proxying(
    make_proxy: Callable[..., Proxy],
) -> None:
    """Defect 10: the lock, YAML round trip and fsync of an edit ran on the event loop;
    while `strangler shift --apply` held the lock, proxying froze."""
    import fcntl

    facade = make_proxy()
    auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    lock_path = facade.routing.with_name(f".{facade.routing.name}.lock")
    with ThreadPoolExecutor(1) as pool, facade.client() as client, open(lock_path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # as an edit in progress elsewhere
        with facade.admin() as admin:
            edit = pool.submit(
                admin.post,
                "/__facade/admin/routes/api/shift",
                json={"to": "new", "percent": 30},
                headers=auth,
            )
            _wait_for_a_lock_waiter(lock_path)
            for _ in range(5):  # the edit is waiting for the lock; requests flow
                answer = client.get("/api/x", timeout=2)
                assert answer.status_code == 200
            assert not edit.done()
            fcntl.flock(lock, fcntl.LOCK_UN)
            assert edit.result(timeout=10).json()["after"] == {"monolith": 70.0, "new": 30.0}


def test_admin_api_is_absent_without_a_token(
    tmp_path: Path, backends: tuple[Upstream, Upstream]
) -> None:
    path = tmp_path / "routing.yaml"
    path.write_text(routing_text(*backends))
    with proxy(path) as facade, facade.admin() as client:
        response = client.get("/__facade/admin/routes", headers={"Authorization": "Bearer x"})
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "admin_disabled"


def test_metrics_and_access_log(tmp_path: Path, backends: tuple[Upstream, Upstream]) -> None:
    path = tmp_path / "routing.yaml"
    path.write_text(routing_text(*backends, split="new"))
    with proxy(path, access_log=True) as facade, facade.client() as client:
        for _ in range(3):
            client.get(
                "/api/x", headers={"X-Amzn-Trace-Id": "Root=1-5759e988-bd862e3fe1be46a994272793"}
            )
        client.get("/status/503")
        line = facade.output.wait_for('"path":"/api/x"', timeout=5)
        entry = json.loads(line)
        assert entry["route"] == "api"
        assert entry["backend"] == "new"
        assert entry["status"] == 200
        assert entry["trace_id"] == "Root=1-5759e988-bd862e3fe1be46a994272793"
        assert entry["duration_ms"] > 0
        metrics = httpx.get(f"{facade.admin_url}/__facade/metrics").text
    assert (
        'strangler_facade_requests_total{backend="new",decision="weight",route="api"} 3.0'
        in metrics
    )
    assert (
        "strangler_facade_responses_total"
        '{backend="monolith",route="default",status_class="5xx"} 1.0' in metrics
    )
    assert (
        'strangler_facade_request_duration_seconds_count{backend="new",route="api"} 3.0' in metrics
    )
    assert 'strangler_facade_route_weight_percent{backend="new",route="api"} 100.0' in metrics


def test_several_workers_serve_and_all_take_a_reload(
    tmp_path: Path, backends: tuple[Upstream, Upstream]
) -> None:
    path = tmp_path / "routing.yaml"
    path.write_text(routing_text(*backends, split="{monolith: 100, new: 0}"))
    with proxy(path, workers=2) as facade:
        pids: set[int] = set()
        deadline = time.monotonic() + 10
        while len(pids) < 2:  # new connections are spread over the workers
            pids.add(int(facade.health()["pid"]))
            assert time.monotonic() < deadline, "only one worker answered"
        apply_edit(path, "promote", "api", backend="new")
        updated: set[int] = set()
        deadline = time.monotonic() + 5
        while updated != pids:
            health = facade.health()
            if health["generation"] == 2:
                updated.add(int(health["pid"]))
            assert time.monotonic() < deadline, f"reloaded: {updated} of {pids}"
        with facade.client() as client:
            assert {client.get("/api/x").headers["x-strangler-backend"] for _ in range(20)} == {
                "new"
            }
            metrics = httpx.get(f"{facade.admin_url}/__facade/metrics").text
        assert "strangler_facade_requests_total" in metrics


def _raw_exchange(facade: Proxy, payload: bytes, until: bytes, count: int) -> bytes:
    """Send raw bytes, read until ``until`` has been seen ``count`` times."""
    port = int(facade.url.rsplit(":", 1)[1])
    received = b""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(payload)
        while received.count(until) < count:
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
    return received


def test_pipelined_requests_are_answered_in_order(make_proxy: Callable[..., Proxy]) -> None:
    facade = make_proxy(split="new")
    requests = (
        b"".join(b"GET /api/p%d HTTP/1.1\r\nHost: x\r\n\r\n" % i for i in range(5))
        + b"GET /api/last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    received = _raw_exchange(facade, requests, b'"backend": "new"', 6)
    paths = [part.split(b'"', 1)[0] for part in received.split(b'"path": "')[1:]]
    assert paths == [b"/api/p0", b"/api/p1", b"/api/p2", b"/api/p3", b"/api/p4", b"/api/last"]
    assert received.count(b"HTTP/1.1 200 OK") == 6


def test_expect_100_continue_is_answered_by_the_facade(make_proxy: Callable[..., Proxy]) -> None:
    facade = make_proxy(split="new")
    port = int(facade.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(
            b"POST /api/upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
            b"Expect: 100-continue\r\nConnection: close\r\n\r\n"
        )
        interim = sock.recv(65536)
        assert interim.startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        sock.sendall(b"hello")
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert b"HTTP/1.1 200 OK" in answer
    echo = json.loads(answer.split(b"\r\n\r\n", 1)[1])
    assert echo["body"] == "hello"
    assert "expect" not in {name for name, _ in echo["headers"]}


def test_the_cookie_secret_comes_from_the_environment_a_file_or_is_kept_under_var(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Defect 11: the key was random per start unless an undocumented variable was set, so
    every restart re-assigned every canary user."""
    from facade.proxy.run import cookie_secret
    from facade.routing.loader import parse_table

    base = (
        "version: 1\nbackends:\n  monolith: {kind: monolith, url: 'http://127.0.0.1:9'}\n"
        "routes: []\ndefault: monolith\n"
    )
    plain = parse_table(base, str(tmp_path / "routing.yaml"))
    monkeypatch.delenv("STRANGLER_COOKIE_SECRET", raising=False)
    kept = tmp_path / "var" / "cookie-secret"
    first = cookie_secret(plain, kept)
    assert kept.stat().st_mode & 0o777 == 0o600
    assert cookie_secret(plain, kept) == first  # the next start signs the same cookies
    monkeypatch.setenv("STRANGLER_COOKIE_SECRET", "from-the-environment")
    assert cookie_secret(plain, kept) == b"from-the-environment"
    (tmp_path / "secret.txt").write_text("from-a-file\n")
    configured = parse_table(
        base.replace("version: 1\n", "version: 1\nfacade:\n  cookie_secret: "
                     "{env: SHOP_SECRET, file: secret.txt}\n"),
        str(tmp_path / "routing.yaml"),
    )  # fmt: skip
    assert cookie_secret(configured) == b"from-a-file"
    monkeypatch.setenv("SHOP_SECRET", "shop")
    assert cookie_secret(configured) == b"shop"
