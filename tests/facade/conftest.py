from __future__ import annotations

import queue
import socket
import subprocess
import threading


def free_port() -> int:
    """A port nothing listens on right now (for commands that need one up front)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LineReader:
    """Collects a process's output on a thread so tests can wait for a line, not a time."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        assert process.stdout is not None
        self._thread = threading.Thread(target=self._pump, args=(process.stdout,), daemon=True)
        self._thread.start()

    def _pump(self, stream: object) -> None:
        for line in iter(stream.readline, ""):  # type: ignore[attr-defined]
            self.lines.append(line)
            self._queue.put(line)
        self._queue.put(None)

    def wait_for(self, text: str, timeout: float) -> str:
        while True:
            try:
                line = self._queue.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(
                    f"no line with {text!r} in {timeout}s:\n" + self.text
                ) from None
            if line is None:
                raise AssertionError(f"output ended without {text!r}:\n" + self.text)
            if text in line:
                return line

    def finish(self, timeout: float = 10) -> None:
        self._thread.join(timeout)

    @property
    def text(self) -> str:
        return "".join(self.lines)
