"""One JSON line per request, written in batches so logging costs no syscall per request.

Lines look like::

    {"time":1795322402.753,"client":"127.0.0.1","method":"GET","path":"/api/orders/",
     "status":401,"route":"orders","backend":"monolith","decision":"weight",
     "duration_ms":1.76,"bytes":109,"trace_id":"Root=1-6b027222-..."}

Route, backend and decision names are validated identifiers and the method a token, so
only the path and the client-supplied trace id need JSON escaping.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from typing import IO, Any

_dumps = json.dumps
# printable ASCII but for '"' and '\\': a JSON string as it is, between quotes
_plain = re.compile(r"[ !#-\[\]-~]*").fullmatch


def _quoted(text: str) -> str:
    """A JSON string literal; the common case (plain printable ASCII) without json.dumps."""
    return f'"{text}"' if _plain(text) else _dumps(text)


class AccessLog:
    def __init__(
        self, stream: IO[str] | None, loop: asyncio.AbstractEventLoop, flush_every: float = 0.2
    ) -> None:
        self.stream = stream
        self.loop = loop
        self.flush_every = flush_every
        self._lines: list[str] = []
        self._scheduled = False

    def request(
        self,
        client: str,
        method: str,
        path: str,
        status: int,
        route: str,
        backend: str,
        decision: str,
        seconds: float,
        size: int,
        trace: str,
    ) -> None:
        if self.stream is None:
            return
        path = f'"{path}"' if _plain(path) else _dumps(path)
        trace = f'"{trace}"' if _plain(trace) else _dumps(trace)
        lines = self._lines
        lines.append(
            f'{{"time":{time.time():.3f},"client":"{client}","method":"{method}",'
            f'"path":{path},"status":{status},"route":"{route}","backend":"{backend}",'
            f'"decision":"{decision}","duration_ms":{seconds * 1000:.3f},"bytes":{size},'
            f'"trace_id":{trace}}}'
        )
        if len(lines) >= 512:
            self.flush()
        elif not self._scheduled:
            self._scheduled = True
            self.loop.call_later(self.flush_every, self.flush)

    def write(self, entry: dict[str, Any]) -> None:
        if self.stream is not None:
            self._append(_dumps(entry, separators=(",", ":")))

    def _append(self, line: str) -> None:
        self._lines.append(line)
        if len(self._lines) >= 512:
            self.flush()
        elif not self._scheduled:
            self._scheduled = True
            self.loop.call_later(self.flush_every, self.flush)

    def flush(self) -> None:
        self._scheduled = False
        if self._lines and self.stream is not None:
            self.stream.write("\n".join(self._lines) + "\n")
            self.stream.flush()
            self._lines.clear()
