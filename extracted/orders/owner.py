"""Calls to the monolith, which keeps owning customers, tokens and stock.

``identity`` resolves a customer's API token (cached briefly: the monolith is not asked
on every request); ``reserve``/``release`` take and give back stock under the order's
idempotency key, so a retried call — by this function or by Lambda itself — never takes
stock twice. Errors the monolith answers in the shop's envelope (404 unknown product,
409 out of stock, ...) are passed on unchanged; when it cannot be reached the caller
gets a 503 and nothing is left half done.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from typing import Any

import urllib3

from extracted.orders.errors import ApiError, authentication_failed, unavailable

SERVICE_HEADER = "X-Service-Token"
RETRIES = urllib3.Retry(
    total=3, connect=3, read=2, backoff_factor=0.1, status_forcelist=(502, 503, 504),
    allowed_methods=None, raise_on_status=False,
)  # fmt: skip


@dataclass(frozen=True)
class Identity:
    user: int
    customer: int | None
    staff: bool


class Owner:
    def __init__(
        self,
        base_url: str,
        service_token: str,
        *,
        timeout: float = 5.0,
        identity_ttl: float = 30.0,
        max_cached: int = 10_000,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.service_token = service_token
        self.identity_ttl = identity_ttl
        self.max_cached = max_cached
        self._http = urllib3.PoolManager(
            maxsize=32, retries=RETRIES, timeout=urllib3.Timeout(connect=2.0, read=timeout)
        )
        self._identities: dict[str, tuple[float, Identity]] = {}
        self._lock = threading.Lock()

    def _call(
        self, method: str, path: str, *, headers: dict[str, str], body: Any = None
    ) -> tuple[int, Any]:
        encoded = json.dumps(body).encode() if body is not None else None
        if encoded is not None:
            headers = {**headers, "Content-Type": "application/json"}
        try:
            response = self._http.request(
                method, self.base_url + path, body=encoded, headers=headers
            )
        except urllib3.exceptions.HTTPError as exc:
            raise unavailable(f"The stock and customer service is unreachable: {exc}") from exc
        if response.status >= 500:
            raise unavailable(f"The stock and customer service answered {response.status}.")
        try:
            return response.status, json.loads(response.data or b"null")
        except ValueError as exc:
            raise unavailable(
                "The stock and customer service answered something not JSON."
            ) from exc

    def identity(self, token: str) -> Identity:
        now = time.monotonic()
        with self._lock:
            cached = self._identities.get(token)
        if cached and cached[0] > now:
            return cached[1]
        status, body = self._call(
            "GET", "/internal/identity", headers={"Authorization": f"Token {token}"}
        )
        if status == 401:
            error = body.get("error", {}) if isinstance(body, dict) else {}
            raise authentication_failed(str(error.get("message") or "Invalid token."))
        if status != 200:
            raise unavailable(f"Identity lookup answered {status}.")
        identity = Identity(int(body["user"]), body.get("customer"), bool(body["staff"]))
        with self._lock:
            if len(self._identities) >= self.max_cached:
                self._identities.clear()
            self._identities[token] = (now + self.identity_ttl, identity)
        return identity

    def _service(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        status, answer = self._call(
            method, path, headers={SERVICE_HEADER: self.service_token}, body=body
        )
        if status in (200, 201) and isinstance(answer, dict):
            return answer
        error = answer.get("error") if isinstance(answer, dict) else None
        if isinstance(error, dict) and status < 500 and status not in (401, 403):
            raise ApiError(
                status,
                str(error.get("code", "bad_request")),
                str(error.get("message", "")),
                fields=error.get("fields"),
                details=error.get("details"),
            )
        raise unavailable(f"The stock service refused the call ({status}).")

    def reserve(self, key: str, lines: list[tuple[int, int]]) -> dict[str, Any]:
        return self._service(
            "POST",
            "/internal/stock/reservations",
            {"key": key, "lines": [{"product": p, "quantity": q} for p, q in lines]},
        )

    def release(self, key: str) -> dict[str, Any]:
        return self._service("POST", f"/internal/stock/reservations/{key}/release")
