"""Secrets and personal data removed before anything reaches the shadow store.

What is stored of a request is its method, path, query string and a few safe headers;
of the answers, only the differing fragments. Before writing:

- request headers: only those in ``SAFE_HEADERS`` are kept (never Authorization,
  Cookie, API keys, client addresses);
- query parameters and JSON members whose name contains a word of ``SECRET_WORDS`` or
  ``PERSONAL_WORDS`` — or a name of the route's ``shadow.redact`` list — have their value
  replaced by ``[redacted]``, at any depth, including a fragment whose own path ends in
  such a name (``$.customer.email``);
- every stored string is scrubbed of e-mail addresses, bearer tokens and JWTs wherever
  they appear (``[redacted]``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl, quote

REDACTED = "[redacted]"
SAFE_HEADERS = frozenset(
    {
        "accept",
        "accept-encoding",
        "accept-language",
        "cache-control",
        "content-type",
        "content-length",
        "if-match",
        "if-none-match",
        "if-modified-since",
        "user-agent",
        "x-amzn-trace-id",
    }
)
SECRET_WORDS = (
    "token", "secret", "password", "passwd", "auth", "session", "cookie", "csrf",
    "signature", "credential", "apikey", "api_key", "api-key", "private",
)  # fmt: skip
PERSONAL_WORDS = ("email", "e-mail", "phone", "mobile", "ssn", "iban", "card", "birth")
_SCRUB = re.compile(
    r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"  # e-mail addresses
    r"|(?i:bearer|basic|token)\s+[A-Za-z0-9._~+/=-]{8,}"  # credentials in any text
    r"|eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"  # JWTs
)


class Redactor:
    def __init__(self, names: Iterable[str] = ()) -> None:
        self.words = (*SECRET_WORDS, *PERSONAL_WORDS, *(n.lower() for n in names))

    def sensitive(self, name: str) -> bool:
        lowered = name.lower()
        return any(word in lowered for word in self.words)

    def text(self, value: str) -> str:
        return _SCRUB.sub(REDACTED, value)

    def headers(self, headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
        return [(n, self.text(v)) for n, v in headers if n.lower() in SAFE_HEADERS]

    def query(self, query: str) -> str:
        if not query:
            return ""
        pairs = parse_qsl(query, keep_blank_values=True)
        kept = [(n, REDACTED if self.sensitive(n) else self.text(v)) for n, v in pairs]
        return "&".join(f"{quote(n, safe='')}={quote(v, safe='[]')}" for n, v in kept)

    def value(self, value: Any) -> Any:
        if isinstance(value, dict):
            return {
                k: REDACTED if self.sensitive(str(k)) else self.value(v) for k, v in value.items()
            }
        if isinstance(value, list):
            return [self.value(v) for v in value]
        if isinstance(value, str):
            return self.text(value)
        return value

    def fragment(self, path: str, fragment: str) -> str:
        """A differing value (JSON text) found at ``path``, as it may be stored."""
        names = re.findall(r'\.([A-Za-z0-9_-]+)|\["((?:[^"\\]|\\.)*)"\]', path)
        if any(self.sensitive(a or b) for a, b in names):
            return json.dumps(REDACTED)
        try:
            parsed = json.loads(fragment)
        except ValueError:
            return self.text(fragment)  # a truncated fragment: scrubbed as text
        return json.dumps(self.value(parsed), ensure_ascii=False, sort_keys=True)


__all__ = ["REDACTED", "SAFE_HEADERS", "Redactor"]
