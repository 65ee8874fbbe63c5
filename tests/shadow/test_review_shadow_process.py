"""Adversarial review of the shadow process (commit 5feca30 and after): what breaks when
the worker, the shadow process, the store or the answers misbehave. Each test fails on
the code as reviewed and states the behaviour that should hold instead.

Real ``strangler serve`` processes on port 0 with real backends (``tests.shadow.backends``
and a raw socket backend below for answers ``http.server`` cannot make), or a real
``Recorder`` and its spawned shadow process. Synchronisation polls with deadlines."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from facade.routing.loader import load_table
from facade.shadow import recorder as recorder_module
from facade.shadow import store
from facade.shadow.copier import Job
from facade.shadow.recorder import Count, Recorder
from tests.facade.proxy import Proxy, proxy
from tests.shadow.backends import backend, order
from tests.shadow.test_mirror import shadow_series, shadowed, wait_until

ROOT = Path(__file__).resolve().parents[2]

# -- processes, read from /proc (no third-party process library) ---------------------------


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, parent pid) of a process, or None once it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return fields[0], int(fields[1])


def _alive(pid: int) -> bool:
    found = _stat(pid)
    return found is not None and found[0] != "Z"  # a zombie has exited


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = _stat(int(entry.name))
            if stat is not None and stat[1] == pid and stat[0] != "Z":
                found.append(int(entry.name))
    return found


def _shadow_pid(worker: int) -> int:
    """The worker's shadow process: its child in Linux's idle scheduling class."""

    def find() -> int | None:
        for child in _children(worker):
            with contextlib.suppress(OSError):
                if os.sched_getscheduler(child) == os.SCHED_IDLE:
                    return child
        return None

    return int(wait_until(find, timeout=20, what="the worker's shadow process"))


def _kill(pid: int, sig: int = signal.SIGKILL) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def _accounted(path: Path, route: str = "orders") -> int:
    """Copied requests the store accounts for: compared, dropped or failed."""
    summary = store.summary(path, route)
    return summary.compared + summary.dropped + summary.errors


# -- a raw HTTP backend: answers ``http.server`` will not send ------------------------------

Answer = Callable[[str, str, dict[bytes, bytes]], bytes | None]  # None: cut the connection


@contextmanager
def raw_backend(answer: Answer) -> Iterator[tuple[str, list[tuple[str, str]]]]:
    """A backend sending ``answer(method, target, headers)`` as raw bytes, keep-alive;
    what it returns after ``CUT`` is sent and the connection closed."""
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen(128)
    received: list[tuple[str, str]] = []

    def serve(conn: socket.socket) -> None:
        buffer = b""
        with conn:
            while True:
                while b"\r\n\r\n" not in buffer:
                    try:
                        data = conn.recv(65536)
                    except OSError:
                        return
                    if not data:
                        return
                    buffer += data
                head, _, buffer = buffer.partition(b"\r\n\r\n")
                lines = head.split(b"\r\n")
                method, target, _ = lines[0].decode("latin-1").split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    name, _, value = line.partition(b":")
                    headers[name.strip().lower()] = value.strip()
                length = int(headers.get(b"content-length", b"0"))
                while len(buffer) < length:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buffer += data
                buffer = buffer[length:]
                received.append((method, target))
                out = answer(method, target, headers)
                if out is None:
                    return
                try:
                    if out.startswith(CUT):
                        conn.sendall(out[len(CUT) :])
                        return
                    conn.sendall(out)
                except OSError:
                    return

    def accept() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}", received
    finally:
        server.close()


CUT = b"\x00cut\x00"  # prefix: send the rest, then close the connection


def _json(body: bytes, status: bytes = b"200 OK") -> bytes:
    return (
        b"HTTP/1.1 " + status + b"\r\ncontent-type: application/json\r\n"
        b"content-length: %d\r\n\r\n" % len(body) + body
    )


def _routing(tmp: Path, primary: str, candidate: str, shadow: str, extra: str = "") -> Path:
    routing = tmp / "routing.yaml"
    routing.write_text(f"""\
version: 1
backends:
  monolith: {{kind: monolith, url: "{primary}"}}
  candidate: {{kind: url, url: "{candidate}"}}
routes:
  - name: orders
    match: {{paths: ["/api/orders", "/api/orders/*"]}}
    targets: {{monolith: 100}}
    shadow: {shadow}
{extra}""")
    return routing


# -- what a copy is -------------------------------------------------------------------------


def test_a_copy_carries_the_headers_the_primary_got(tmp_path: Path) -> None:
    """README: the copy is the request "as the primary got it" (same headers and Host,
    nothing rewritten). The primary gets X-Forwarded-Host and X-Forwarded-Port and never
    a header its client named in Connection (hop-by-hop, RFC 9110 7.6.1); the copies
    (shadow and noise) lack the first two and carry the third. A backend building URLs
    from X-Forwarded-Host answers the copies differently — and since the noise copy
    lacks them too, that difference is learnt as noise and hidden."""
    with shadowed(tmp_path, "{to: candidate, noise: 0}") as (running, primary, candidate, _):
        with running.client() as client:
            answer = client.get(
                "/api/orders/1/",
                headers={"connection": "keep-alive, x-hop", "x-hop": "for the next hop only"},
            )
            assert answer.status_code == 200
        candidate.wait_for(lambda got: len(got) == 1)
        primary_got = primary.received[0][2]
        copy_got = {k: v for k, v in candidate.received[0][2].items() if k != "x-strangler-shadow"}
        assert "x-hop" not in primary_got
        assert copy_got == primary_got


def test_a_primary_cut_mid_answer_is_counted_not_forgotten(tmp_path: Path) -> None:
    """A primary that dies after its status line (the client gets a cut answer) is not
    compared — right — but the copy is then counted nowhere: neither the store nor
    ``strangler_facade_shadow_total`` learn of it, while a primary the facade answered
    502/504 for is ``dropped:primary_failed``. Every sampled request must end in a
    counter (mirror.py: "every failure of a copy ends in a counter")."""

    def answer(method: str, target: str, headers: dict[bytes, bytes]) -> bytes | None:
        if target.endswith("/cut/") and b"x-strangler-shadow" not in headers:
            return CUT + b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n" \
                b"content-length: 100\r\n\r\n{\"id\":"  # fmt: skip
        return _json(b'{"id": 1}')

    with raw_backend(answer) as (primary, _), raw_backend(answer) as (candidate, _):
        routing = _routing(tmp_path, primary, candidate, "{to: candidate, noise: 0}")
        path = tmp_path / "var" / "shadow.sqlite3"
        with proxy(routing) as running, running.client() as client:
            assert client.get("/api/orders/1/").status_code == 200
            with pytest.raises(httpx.RemoteProtocolError):
                client.get("/api/orders/cut/")
            assert client.get("/api/orders/2/").status_code == 200
            wait_until(lambda: store.summary(path, "orders").compared == 2, what="2 compared")
            wait_until(lambda: _accounted(path) == 3, timeout=8, what="the cut one counted")
            assert store.summary(path, "orders").dropped == 1
            assert shadow_series(running).get("dropped") == 1.0


# -- what the shadow process must survive ----------------------------------------------------

HOSTILE = {
    # Python's json.dumps writes NaN by default; the README's own example normalises
    # $.total as a number: Decimal's NaN comparison raises InvalidOperation
    "nan": (b'{"id": 7, "total": NaN}', b'{"id": 7, "total": 70.0}'),
    # nested deeper than the recursion limit: json.loads raises RecursionError
    "deep": (b"[" * 5000 + b"]" * 5000, b"[]"),
    # a lone surrogate (a JavaScript string cut in an emoji): SQLite refuses the example
    "surrogate": (b'{"id": 7, "name": "\\ud83d"}', b'{"id": 7, "name": "x"}'),
}


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_an_answer_the_comparison_cannot_read_loses_no_pair(tmp_path: Path, kind: str) -> None:
    """One pair whose comparison or storage raises takes its whole batch with it (every
    pair and count the shadow process gathered in those 20 ms, of every route): in
    ``_flush`` the exception escapes (NaN, deep) or aborts the store's transaction
    (surrogate). The live series and the store then disagree, and the hostile request
    ends in no counter at all. It should be counted (compared, or an error) and the
    others stored."""

    def shape(which: int) -> Answer:
        def answer(method: str, target: str, headers: dict[bytes, bytes]) -> bytes:
            if "/hostile/" in target:
                return _json(HOSTILE[kind][which])
            return _json(b'{"id": 1, "total": 10.0}')

        return answer

    shadow = "{to: candidate, noise: 0, compare: {normalize: {$.total: {number: 0.01}}}}"
    with raw_backend(shape(0)) as (primary, _), raw_backend(shape(1)) as (candidate, _):
        routing = _routing(tmp_path, primary, candidate, shadow)
        path = tmp_path / "var" / "shadow.sqlite3"
        with proxy(routing) as running, running.client() as client:
            for target in ("/api/orders/1/", "/api/orders/hostile/", "/api/orders/2/",
                           "/api/orders/3/"):  # fmt: skip
                assert client.get(target).status_code == 200
            wait_until(lambda: _accounted(path) == 4, timeout=8, what="4 accounted for")
            wait_until(lambda: sum(shadow_series(running).values()) == 4, timeout=5)


def test_a_store_that_cannot_be_opened_keeps_the_live_series_counting(tmp_path: Path) -> None:
    """A route whose store cannot be opened (here its folder is a file; in production a
    read-only or full volume) makes ``Writer()`` raise outside ``_flush``'s try: the
    outcomes are never sent, so ``strangler_facade_shadow_total`` stops for every route
    of the worker, and the other routes' stores are written or not by set order."""
    (tmp_path / "blocker").write_text("a file where the store's folder should be\n")
    users = """\
  - name: users
    match: {paths: ["/api/users/*"]}
    targets: {monolith: 100}
    shadow: {to: candidate, noise: 0, store: blocker/shadow.sqlite3}
"""
    with backend("monolith") as primary, backend("candidate") as candidate:
        routing = _routing(tmp_path, primary.url, candidate.url, "{to: candidate, noise: 0}", users)
        path = tmp_path / "var" / "shadow.sqlite3"
        with proxy(routing) as running, running.client() as client:
            for number in range(3):
                assert client.get(f"/api/users/{number}/").status_code == 200
                assert client.get(f"/api/orders/{number}/").status_code == 200
            candidate.wait_for(lambda got: len(got) == 6)
            wait_until(
                lambda: sum(shadow_series(running).values()) == 3, timeout=8,
                what="the orders route's 3 comparisons in the live series",
            )  # fmt: skip
            wait_until(lambda: store.summary(path, "orders").compared == 3, timeout=5)


# -- the end of the shadow process, and of the worker ----------------------------------------


def test_copies_in_flight_and_waiting_at_shutdown_are_counted(tmp_path: Path) -> None:
    """SIGTERM with a hanging shadow: the shadow process gives its copies GRACE (5 s),
    then stores only what finished — copies in flight and jobs in the waiting room are
    counted nowhere, so the store (what the rollout gate reads) loses exactly the slow
    copies, the ones that matter."""
    shadow = "{to: candidate, noise: 0, max_concurrent: 2, timeout: 30}"
    with shadowed(tmp_path, shadow) as (running, _primary, candidate, path):
        candidate.mode = "hang"
        with running.client() as client:
            for number in range(6):
                assert client.get(f"/api/orders/{number}/").status_code == 200
        candidate.wait_for(lambda got: len(got) == 2)  # 2 in flight, 2 waiting, 2 dropped
        wait_until(lambda: store.summary(path, "orders").dropped == 2, what="2 dropped")
        running.process.send_signal(signal.SIGTERM)
        running.process.wait(timeout=20)
        assert _accounted(path) == 6, store.report(path, "orders").counters


def test_a_job_that_waited_in_the_pipe_past_the_timeout_is_not_sent_late(tmp_path: Path) -> None:
    """recorder.py: "a copy that waited past shadow.timeout for its answer is an error
    like any late one"; copier.py: a job that waited too long is dropped, "never sent
    late". The wait is measured only from the job's arrival in the shadow process: a job
    that sat in the pipe while the shadow process had no CPU is sent however late."""
    with shadowed(tmp_path, "{to: candidate, noise: 0, timeout: 1}") as (
        running, _primary, candidate, path,
    ):  # fmt: skip
        with running.client() as client:
            assert client.get("/api/orders/1/").status_code == 200
            wait_until(lambda: store.summary(path, "orders").compared == 1)
            shadow = _shadow_pid(running.process.pid)
            os.kill(shadow, signal.SIGSTOP)  # no CPU for the shadow process
            try:
                assert client.get("/api/orders/2/").status_code == 200
                time.sleep(1.5)  # the subject: longer than the route's timeout
            finally:
                os.kill(shadow, signal.SIGCONT)
            wait_until(lambda: _accounted(path) == 2, what="the second request accounted for")
        assert [r[1] for r in candidate.received] == ["/api/orders/1/"]
        assert store.summary(path, "orders").compared == 1


def _killed_shadow(running: Proxy, path: Path) -> int:
    with running.client() as client:
        assert client.get("/api/orders/1/").status_code == 200
    wait_until(lambda: store.summary(path, "orders").compared == 1)
    shadow = _shadow_pid(running.process.pid)
    os.kill(shadow, signal.SIGKILL)
    wait_until(lambda: not _alive(shadow), what="the shadow process gone")
    return shadow


def test_a_dead_shadow_process_still_counts_the_requests_it_cannot_take(tmp_path: Path) -> None:
    """kill -9 of the shadow process: the primaries are unharmed (held), but every later
    copy is pickled, written to a broken pipe and forgotten — counted neither in the
    store nor in ``strangler_facade_shadow_total``, for the worker's whole life (nothing
    starts a new shadow process). A dashboard then shows a shadow that went quiet, not
    one that drops everything."""
    with shadowed(tmp_path, "{to: candidate, noise: 0}") as (running, _primary, _cand, path):
        _killed_shadow(running, path)
        with running.client() as client:
            for number in range(2, 7):
                answer = client.get(f"/api/orders/{number}/")
                assert answer.status_code == 200
                assert answer.json()["id"] == number
        wait_until(
            lambda: sum(shadow_series(running).values()) == 6, timeout=8,
            what="the 5 copies not handed over in the live series",
        )  # fmt: skip


def test_a_dead_shadow_process_is_logged_once_not_per_request(tmp_path: Path) -> None:
    """After kill -9 of the shadow process each hand-over logs "the shadow recorder is
    gone" at ERROR: one line per event-loop turn that finished a copied request, i.e.
    thousands a second under load, on the worker's hot path."""
    with shadowed(tmp_path, "{to: candidate, noise: 0}") as (running, _primary, _cand, path):
        _killed_shadow(running, path)
        before = len(running.output.lines)

        def said() -> list[str]:
            return [line for line in running.output.lines[before:] if "shadow" in line]

        with running.client() as client:
            for number in range(20):
                assert client.get(f"/api/orders/{number}/").status_code == 200
        httpx.get(f"{running.admin_url}/__facade/metrics", timeout=5)  # the worker caught up
        with contextlib.suppress(AssertionError):
            wait_until(lambda: len(said()) > 3, timeout=2)
        assert len(said()) <= 3, "".join(said())


def test_a_stopped_shadow_process_does_not_hang_the_workers_shutdown(tmp_path: Path) -> None:
    """``Recorder.close`` writes what is unsent with a *blocking* write before its
    ``join(10)`` and ``kill``: a shadow process that does not read (stopped here; in
    production one starved in the idle class or stuck on the store) holds SIGTERM's
    shutdown forever once more than a pipe's 64 KB are unsent."""

    def large(method: str, path: str) -> dict[str, Any]:
        return {**order(method, path), "padding": "x" * 20_000}

    shadow: int | None = None
    with shadowed(tmp_path, "{to: candidate, noise: 0}", candidate_shape=large) as (
        running, primary, _candidate, path,
    ):  # fmt: skip
        primary.shape = large
        try:
            with running.client() as client:
                assert client.get("/api/orders/1/").status_code == 200
                wait_until(lambda: store.summary(path, "orders").compared == 1)
                shadow = _shadow_pid(running.process.pid)
                os.kill(shadow, signal.SIGSTOP)
                for number in range(2, 14):  # about 240 KB handed over, unread
                    assert client.get(f"/api/orders/{number}/").status_code == 200
            running.process.send_signal(signal.SIGTERM)
            try:
                running.process.wait(timeout=15)
            except Exception:
                pytest.fail("strangler serve still running 15 s after SIGTERM")
        finally:
            if shadow is not None:
                _kill(shadow)


def test_a_killed_shadow_process_takes_its_lambda_environments_with_it(tmp_path: Path) -> None:
    """The shadow process's Lambda environments are daemonic children it kills when it
    ends properly (held: kill -9 of the *worker* leaves nothing after GRACE). kill -9 of
    the shadow process itself leaves the busy ones running their handler to its end —
    orphans of init, with no Lambda timeout any more to end them."""
    started = tmp_path / "started"
    started.mkdir()
    (tmp_path / "review_handlers.py").write_text(f"""\
import os
import time


def hang(event, context):
    open(os.path.join({str(started)!r}, str(os.getpid())), "w").close()
    time.sleep(60)
    return {{"statusCode": 200, "body": "late"}}
""")
    environments: list[int] = []
    with backend("monolith") as primary:
        routing = tmp_path / "routing.yaml"
        routing.write_text(f"""\
version: 1
backends:
  monolith: {{kind: monolith, url: "{primary.url}"}}
  copy: {{kind: lambda, handler: "review_handlers:hang"}}
routes:
  - name: orders
    match: {{paths: ["/api/orders/*"]}}
    targets: {{monolith: 100}}
    shadow: {{to: copy, noise: 0, timeout: 30}}
""")
        env = {"PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}"}
        try:
            with proxy(routing, env=env) as running, running.client() as client:
                for number in range(2):
                    assert client.get(f"/api/orders/{number}/").status_code == 200
                shadow = _shadow_pid(running.process.pid)
                environments = wait_until(
                    lambda: len(found := _children(shadow)) >= 2 and found, timeout=20,
                    what="two Lambda environments of the shadow process",
                )  # fmt: skip
                wait_until(
                    lambda: {int(p.name) for p in started.iterdir()} >= set(environments),
                    timeout=20, what="both environments running the handler",
                )  # fmt: skip
                os.kill(shadow, signal.SIGKILL)
                with contextlib.suppress(AssertionError):
                    wait_until(lambda: not any(_alive(p) for p in environments), timeout=8)
                left = [p for p in environments if _alive(p)]
                assert not left, f"Lambda environments left running: {left}"
        finally:
            for pid in environments:
                _kill(pid)


# -- the worker's side of the pipe, with a real shadow process -------------------------------

ROUTING = """\
version: 1
backends:
  monolith: {kind: monolith, url: "http://127.0.0.1:1"}
  orders: {kind: ecs, url: "http://127.0.0.1:1"}
routes:
  - name: orders
    match: {paths: ["/api/orders/*"]}
    targets: {monolith: 100}
    shadow: {to: orders, noise: 0}
default: monolith
"""


def _job(tmp_path: Path, store_path: Path, answer: bytes) -> tuple[Any, ...]:
    routing = tmp_path / "routing.yaml"
    routing.write_text(ROUTING)
    table = load_table(routing)
    rules = table.route("orders").shadow
    assert rules is not None
    job = Job(
        "orders", store_path, rules, "GET", "/api/orders/1", None, ((b"host", b"shop"),),
        b"", "127.0.0.1", "Root=1-2-3", b"x-override", 8000, table.backends["orders"],
        table.backends["monolith"], 200, [(b"content-type", b"application/json")], answer,
        time.monotonic(),
    )  # fmt: skip
    return tuple(job)


def test_counts_are_bounded_by_the_backlog_like_jobs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``Recorder.submit`` lets every ``Count`` through whatever the backlog: with a
    shadow process that does not read, the worker's ``_unsent`` grows with every
    request dropped for its body or a failed primary, without bound (the README: past
    16 MB behind, requests are dropped "rather than queued without bound")."""
    monkeypatch.setattr(recorder_module, "BACKLOG", 64 * 1024)  # 16 MB, scaled down
    loop = asyncio.new_event_loop()
    recorder = Recorder(loop, lambda route, result, count: None)
    pid = recorder.process.pid
    assert pid is not None
    try:
        os.kill(pid, signal.SIGSTOP)
        count = Count("orders", tmp_path / "s.sqlite3", "dropped:body")

        async def traffic() -> None:
            for _ in range(1500):  # event-loop turns, 200 dropped requests each
                for _ in range(200):
                    recorder.submit(count)
                await asyncio.sleep(0)

        loop.run_until_complete(traffic())
        assert len(recorder._unsent) <= recorder_module.BACKLOG + 64 * 1024
    finally:
        _kill(pid)
        recorder.close()
        loop.close()


def test_requests_dropped_behind_are_stored_when_the_worker_closes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Requests dropped for the backlog are counted in the worker's series at once and
    in the store "when caught up" (``_behind``); a worker that closes while still behind
    never writes them: the series says dropped, the store (the gate, the report) not."""
    monkeypatch.setattr(recorder_module, "BACKLOG", 1024)  # 16 MB, scaled down
    path = tmp_path / "s.sqlite3"
    outcomes: list[tuple[str, str, int]] = []
    loop = asyncio.new_event_loop()
    recorder = Recorder(loop, lambda route, result, count: outcomes.append((route, result, count)))
    pid = recorder.process.pid
    assert pid is not None
    try:
        os.kill(pid, signal.SIGSTOP)

        async def traffic() -> None:
            recorder.submit(_job(tmp_path, path, b'{"id": 1, "pad": "%s"}' % (b"x" * 200_000)))
            await asyncio.sleep(0)  # written: more than a pipe holds, the rest unsent
            assert len(recorder._unsent) > recorder_module.BACKLOG
            recorder.submit(_job(tmp_path, path, b'{"id": 2}'))  # dropped: backlog
            await asyncio.sleep(0)

        loop.run_until_complete(traffic())
        assert outcomes == [("orders", "dropped", 1)]
        os.kill(pid, signal.SIGCONT)
        recorder.close()
        counters = store.report(path, "orders").counters
        assert counters.get("dropped:backlog") == 1, counters
        assert counters.get("error:shadow_connect") == 1, counters  # the first, sent
    finally:
        _kill(pid)
        recorder.close()
        loop.close()
