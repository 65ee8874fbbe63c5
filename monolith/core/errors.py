"""Errors of the shop and the one JSON shape every API error takes.

Every error response of the JSON API, whatever raised it, has this body::

    {"error": {"status": 409, "code": "out_of_stock", "message": "...",
               "fields": {...},    # validation errors only: field -> messages
               "details": {...}}}  # machine-readable context, when there is any

``ShopError`` and its subclasses are raised by the domain services (``orders.services``
and friends) and are independent of HTTP frameworks; ``api_exception_handler`` turns them,
and DRF's own exceptions, into that body.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404
from rest_framework import exceptions as drf
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


class ShopError(Exception):
    """A domain rule was violated; ``status`` is the HTTP status that reports it."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class NotFound(ShopError):
    status = 404
    code = "not_found"


class Conflict(ShopError):
    status = 409
    code = "conflict"


class OutOfStock(Conflict):
    code = "out_of_stock"


class InvalidTransition(Conflict):
    code = "invalid_transition"


def error_body(
    status: int,
    code: str,
    message: str,
    *,
    fields: Any = None,
    details: dict[str, Any] | None = None,
) -> dict[str, Any]:
    error: dict[str, Any] = {"status": status, "code": code, "message": message}
    if fields is not None:
        error["fields"] = fields
    if details:
        error["details"] = details
    return {"error": error}


_DRF_CODES = {
    drf.ValidationError: "validation_error",
    drf.ParseError: "malformed_request",
    drf.NotAuthenticated: "not_authenticated",
    drf.AuthenticationFailed: "authentication_failed",
    drf.PermissionDenied: "permission_denied",
    drf.NotFound: "not_found",
    drf.MethodNotAllowed: "method_not_allowed",
    drf.NotAcceptable: "not_acceptable",
    drf.UnsupportedMediaType: "unsupported_media_type",
    drf.Throttled: "throttled",
}


def _code_for(exc: drf.APIException) -> str:
    for cls in type(exc).__mro__:
        if cls in _DRF_CODES:
            return _DRF_CODES[cls]
    return str(exc.default_code)


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF ``EXCEPTION_HANDLER``: every error in the envelope described above."""
    if isinstance(exc, ShopError):
        return Response(
            error_body(exc.status, exc.code, exc.message, details=exc.details), status=exc.status
        )
    if isinstance(exc, Http404):
        exc = drf.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = drf.PermissionDenied()

    response = drf_exception_handler(exc, context)
    if response is None or not isinstance(exc, drf.APIException):
        return response
    if isinstance(exc, drf.ValidationError):
        fields = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        response.data = error_body(
            response.status_code,
            "validation_error",
            "The request has invalid fields; see 'fields'.",
            fields=fields,
        )
    else:
        detail = exc.detail
        message = str(detail) if not isinstance(detail, dict | list) else "Request failed."
        response.data = error_body(response.status_code, _code_for(exc), message)
    return response
