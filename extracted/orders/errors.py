"""The shop's error envelope, as the monolith's API answers it.

Every error body is ``{"error": {"status", "code", "message", "fields"?, "details"?}}``
— the same shape, codes and messages as the monolith (its DRF exception handler), so a
client cannot tell which side of the cut answered.
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        fields: Any = None,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.fields = fields
        self.details = details
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"status": self.status, "code": self.code, "message": self.message}
        if self.fields is not None:
            error["fields"] = self.fields
        if self.details:
            error["details"] = self.details
        return {"error": error}


def not_authenticated() -> ApiError:
    return ApiError(
        401,
        "not_authenticated",
        "Authentication credentials were not provided.",
        headers={"WWW-Authenticate": "Token"},
    )


def authentication_failed(message: str = "Invalid token.") -> ApiError:
    return ApiError(401, "authentication_failed", message, headers={"WWW-Authenticate": "Token"})


def permission_denied(message: str) -> ApiError:
    return ApiError(403, "permission_denied", message)


def not_found(message: str = "Not found.", **details: Any) -> ApiError:
    return ApiError(404, "not_found", message, details=details or None)


def no_resource(path: str) -> ApiError:
    return ApiError(404, "not_found", f"No resource at {path}.")


def method_not_allowed(method: str) -> ApiError:
    return ApiError(405, "method_not_allowed", f'Method "{method}" not allowed.')


def validation_error(fields: Any) -> ApiError:
    return ApiError(
        400, "validation_error", "The request has invalid fields; see 'fields'.", fields=fields
    )


def invalid_transition(order_id: int, status: str, target: str, allowed: list[str]) -> ApiError:
    shown = allowed or ["none: the order is final"]
    return ApiError(
        409,
        "invalid_transition",
        f"Order {order_id} is {status}; it cannot become {target}. "
        f"Allowed next: {', '.join(shown)}.",
        details={"order": order_id, "status": status, "target": target},
    )


def unavailable(message: str) -> ApiError:
    return ApiError(503, "service_unavailable", message)
