"""``facade.stack``: set-up steps, health waits, and a dying service stopping the stack."""

from __future__ import annotations

import sys

import pytest

from facade.exceptions import StackError
from facade.stack import Service, SetupStep, Stack, run_stack
from tests.facade.conftest import free_port

# A service that answers one health check with 200, then exits 0.
ONE_SHOT = """
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.end_headers(); self.wfile.write(b"ok")
    def log_message(self, *a): pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).handle_request()
"""


def stack_of(*services: Service, setup: tuple[SetupStep, ...] = ()) -> Stack:
    return Stack(setup=setup, services=services, front_door="http://127.0.0.1")


def service(name: str, argv: list[str], port: int) -> Service:
    url = f"http://127.0.0.1:{port}"
    return Service(name=name, argv=argv, url=url, health_url=f"{url}/health", role="test")


def test_a_healthy_stack_prints_its_table(capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port()
    said: list[str] = []
    step = SetupStep("prepare", [sys.executable, "-c", "print('prepared')"])
    web = service("web", [sys.executable, "-c", ONE_SHOT, str(port)], port)
    assert run_stack(stack_of(web, setup=(step,)), {}, said.append, ready_timeout=30) == 0
    assert "  prepared" in said
    out = capsys.readouterr().out
    assert "web is healthy" in out
    assert "the stack is up" in out
    assert f"http://127.0.0.1:{port}" in out


def test_a_failing_setup_step_stops_before_any_service(capsys: pytest.CaptureFixture[str]) -> None:
    bad = SetupStep("migrate", [sys.executable, "-c", "import sys; print('boom'); sys.exit(4)"])
    web = service("web", [sys.executable, "-c", ONE_SHOT, "1"], 1)
    said: list[str] = []
    with pytest.raises(StackError, match=r"'migrate' failed with exit code 4"):
        run_stack(stack_of(web, setup=(bad,)), {}, said.append)
    assert "  boom" in said
    assert "web" not in capsys.readouterr().out


def test_a_dying_service_stops_the_stack_with_its_exit_code(
    capsys: pytest.CaptureFixture[str],
) -> None:
    port = free_port()
    dying = service("worker", [sys.executable, "-c", "import sys; sys.exit(3)"], port)
    sleeper = service("web", [sys.executable, "-c", "import time; time.sleep(600)"], free_port())
    assert run_stack(stack_of(sleeper, dying), {}, lambda _: None, ready_timeout=60) == 3
    out = capsys.readouterr().out
    assert "worker stopped (rc=3)" in out
    assert "sending SIGTERM to web" in out


def test_a_service_that_never_gets_healthy_stops_the_stack() -> None:
    sleeper = service("web", [sys.executable, "-c", "import time; time.sleep(600)"], free_port())
    with pytest.raises(StackError, match=r"not healthy after 1s: web"):
        run_stack(stack_of(sleeper), {}, lambda _: None, ready_timeout=1)
