"""Run a local stack: set-up steps, then long-running services, until Ctrl-C.

A ``Stack`` is data: the one-shot ``SetupStep``s (migrate, seed) run in order and must
succeed; the ``Service``s then run side by side under honcho's process manager, which
prefixes every log line with the service's name, stops them all when one dies (and
says which, with its exit code) and forwards Ctrl-C / SIGTERM. A watcher thread polls
each service's health URL and prints the table of what runs where once all answer, or
stops the stack if one does not become healthy in time.
"""

from __future__ import annotations

import datetime
import shlex
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from honcho.manager import Manager
from honcho.printer import Message

from facade.exceptions import StackError

SYSTEM_NAME = "strangler"


@dataclass(frozen=True)
class SetupStep:
    """A command that must finish successfully before any service starts."""

    name: str
    argv: Sequence[str]
    env: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Service:
    """A long-running process of the stack and how to tell it is ready."""

    name: str
    argv: Sequence[str]
    url: str
    health_url: str | None  # None: healthy once started (a worker with no HTTP port)
    role: str
    env: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Stack:
    setup: Sequence[SetupStep]
    services: Sequence[Service]
    front_door: str
    links: Mapping[str, str] = field(default_factory=dict)
    cwd: str | None = None  # every command runs here (the routing file's folder)

    def describe(self) -> dict[str, Any]:
        """The stack as plain data (``strangler stack --json``)."""
        return {
            "front_door": self.front_door,
            "cwd": self.cwd,
            "links": dict(self.links),
            "setup": [{"name": s.name, "command": shlex.join(s.argv)} for s in self.setup],
            "services": [
                {
                    "name": s.name,
                    "role": s.role,
                    "url": s.url,
                    "health": s.health_url,
                    "command": shlex.join(s.argv),
                }
                for s in self.services
            ],
        }


def is_healthy(url: str, timeout: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - our own URL
            return 200 <= int(response.status) < 300
    except (urllib.error.URLError, OSError):
        return False


def run_setup(
    steps: Sequence[SetupStep],
    base_env: Mapping[str, str],
    say: Callable[[str], None],
    cwd: str | None = None,
) -> None:
    for step in steps:
        say(f"{step.name}: {shlex.join(step.argv)}")
        started = time.monotonic()
        result = subprocess.run(  # noqa: S603 - argv built by us, no shell
            list(step.argv),
            env={**base_env, **step.env},
            capture_output=True,
            text=True,
            check=False,
            cwd=cwd,
        )
        for line in (result.stdout + result.stderr).splitlines():
            say(f"  {line}")
        if result.returncode != 0:
            raise StackError(
                f"set-up step {step.name!r} failed with exit code {result.returncode}: "
                f"{shlex.join(step.argv)} (its output is above)"
            )
        say(f"{step.name}: done in {time.monotonic() - started:.1f}s")


def ready_table(stack: Stack) -> str:
    width = max(len(s.name) for s in stack.services)
    lines = ["", "the stack is up:"]
    lines += [f"  {s.name:<{width}}  {s.url:<28} {s.role}" for s in stack.services]
    lines += [f"  {name:<{width}}  {url}" for name, url in stack.links.items()]
    lines += [f"  front door: {stack.front_door}", "  Ctrl-C stops everything.", ""]
    return "\n".join(lines)


class _Watcher(threading.Thread):
    """Polls health URLs until all answer or the deadline passes."""

    def __init__(self, stack: Stack, manager: Manager, timeout: float, poll: float = 0.2) -> None:
        super().__init__(name="strangler-health", daemon=True)
        self.stack = stack
        self.manager = manager
        self.timeout = timeout
        self.poll = poll
        self.failure: str | None = None
        self._stop_event = threading.Event()

    def say(self, text: str) -> None:
        for line in text.splitlines() or [""]:
            self.manager.events.put(
                Message(
                    type="line",
                    data=line + "\n",
                    time=datetime.datetime.now(),
                    name=SYSTEM_NAME,
                    colour=None,
                )
            )

    def stop(self) -> None:
        self._stop_event.set()

    def run(self) -> None:
        deadline = time.monotonic() + self.timeout
        waiting = {s.name: s.health_url for s in self.stack.services if s.health_url}
        while waiting and not self._stop_event.is_set():
            for name, url in list(waiting.items()):
                if is_healthy(url):
                    self.say(f"{name} is healthy ({url})")
                    del waiting[name]
            if not waiting:
                break
            if time.monotonic() > deadline:
                self.failure = f"not healthy after {self.timeout:.0f}s: " + ", ".join(
                    f"{n} ({u})" for n, u in waiting.items()
                )
                self.say(self.failure + "; stopping the stack")
                self.manager.terminate()
                return
            self._stop_event.wait(self.poll)
        if not waiting:
            self.say(ready_table(self.stack))


def run_stack(
    stack: Stack,
    base_env: Mapping[str, str],
    say: Callable[[str], None],
    ready_timeout: float = 120.0,
) -> int:
    """Run the set-up, then the services in the foreground; return the exit code."""
    run_setup(stack.setup, base_env, say, stack.cwd)
    manager = Manager()
    for service in stack.services:
        # honcho runs commands through a shell; exec makes the pid it waits on the
        # service itself, so the stack is only "stopped" once the service has exited.
        command = "exec " + shlex.join(service.argv)
        manager.add_process(service.name, command, env={**base_env, **service.env}, cwd=stack.cwd)
    watcher = _Watcher(stack, manager, ready_timeout)
    watcher.start()
    manager.loop()
    watcher.stop()
    if watcher.failure:
        raise StackError(watcher.failure)
    code = manager.returncode
    # Ctrl-C and SIGTERM are how a user stops the stack: that is success.
    return 0 if code in (None, 0, 130, 143) else int(code)
