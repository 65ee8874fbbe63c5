"""Where a rollout keeps what must survive ``kill -9``: its state, its lease, its
commands — files under ``var/rollouts/`` beside the routing file.

* ``ROUTE.json``: the ``RolloutState``, replaced atomically (write, fsync, rename). The
  controller writes the *intent* of a change (``pending``) before making it and clears it
  after, so a restart finishes a change that was cut off instead of repeating or losing
  it; changes are idempotent (set this share), so finishing one twice is harmless.
* ``ROUTE.lock``: the lease. A controller holds an exclusive ``flock`` on it for as long
  as it runs; the kernel drops it when the process dies, however it dies, so a second
  controller is refused while the first lives and a restart never waits for a timeout.
* ``ROUTE.commands.jsonl``: pause, resume, promote and abort from other terminals,
  appended under a lock of their own and read by the controller in order (by number).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from facade.exceptions import ConfigError
from facade.rollout.engine import RolloutState
from facade.routing.edit import write_atomically

COMMANDS = ("pause", "resume", "promote", "abort")


class LeaseHeld(ConfigError):
    """Another controller runs this route's rollout."""


def state_dir(routing: Path) -> Path:
    """``var/rollouts`` beside the routing file, or ``$STRANGLER_ROLLOUT_DIR``."""
    given = os.environ.get("STRANGLER_ROLLOUT_DIR")
    return Path(given) if given else routing.resolve().parent / "var" / "rollouts"


class RolloutStore:
    def __init__(self, directory: Path, route: str) -> None:
        self.directory = directory
        self.route = route
        self.state_path = directory / f"{route}.json"
        self.lock_path = directory / f"{route}.lock"
        self.commands_path = directory / f"{route}.commands.jsonl"
        self._lease: int | None = None

    # -- state --------------------------------------------------------------------------

    def load(self) -> RolloutState | None:
        try:
            text = self.state_path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        try:
            return RolloutState.from_dict(json.loads(text))
        except (ValueError, TypeError, KeyError) as exc:
            raise ConfigError(
                f"{self.state_path}: unreadable rollout state ({exc}); move it aside to start over"
            ) from exc

    def save(self, state: RolloutState) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        write_atomically(self.state_path, json.dumps(state.as_dict(), indent=1) + "\n")

    # -- the lease ----------------------------------------------------------------------

    @contextlib.contextmanager
    def lease(self) -> Iterator[None]:
        """Hold the route's lease for the block; ``LeaseHeld`` if another process has it."""
        self.directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = self._read_holder(fd)
                raise LeaseHeld(
                    f"a rollout controller for route {self.route!r} is already running"
                    + (f" (pid {holder})" if holder else "")
                    + "; use `strangler rollout status/pause/abort` from here"
                ) from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            self._lease = fd
            yield
        finally:
            self._lease = None
            os.close(fd)  # closing drops the flock

    @staticmethod
    def _read_holder(fd: int) -> int | None:
        with contextlib.suppress(ValueError, OSError):
            return int(os.pread(fd, 32, 0).decode().strip() or "0") or None
        return None

    def holder(self) -> int | None:
        """The pid of the running controller, or None when no process holds the lease."""
        if not self.lock_path.exists():
            return None
        fd = os.open(self.lock_path, os.O_RDWR)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return self._read_holder(fd) or -1
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        finally:
            os.close(fd)

    # -- commands -----------------------------------------------------------------------

    def send(self, command: str, who: str, **args: Any) -> int:
        """Append a command; its number (1-based) is what the controller acknowledges."""
        if command not in COMMANDS:
            raise ConfigError(f"no rollout command {command!r}; commands: {', '.join(COMMANDS)}")
        self.directory.mkdir(parents=True, exist_ok=True)
        with open(self.commands_path, "a+", encoding="utf-8") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                handle.seek(0)
                number = sum(1 for _ in handle) + 1
                entry = {
                    "n": number,
                    "command": command,
                    "who": who,
                    "at": datetime.now(UTC).isoformat(timespec="milliseconds"),
                    **args,
                }
                handle.write(json.dumps(entry) + "\n")
                handle.flush()
                os.fsync(handle.fileno())
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
        return number

    def commands(self, after: int) -> list[dict[str, Any]]:
        """Commands numbered above ``after``, oldest first (a torn last line is skipped:
        its writer has not finished)."""
        try:
            lines = self.commands_path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        found: list[dict[str, Any]] = []
        for number, line in enumerate(lines, start=1):
            if number <= after:
                continue
            try:
                entry = json.loads(line)
            except ValueError:
                break
            found.append(entry)
        return found

    def reset(self) -> None:
        """Start over: the old state and commands are kept beside, numbered."""
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        for path in (self.state_path, self.commands_path):
            if path.exists():
                path.rename(path.with_name(f"{path.name}.{stamp}"))


__all__ = ["COMMANDS", "LeaseHeld", "RolloutStore", "state_dir"]
