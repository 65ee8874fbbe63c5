"""Health check and the error pages that must answer JSON under ``/api/``."""

from __future__ import annotations

import logging

from django.db import DatabaseError, connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from django.views.defaults import page_not_found
from django.views.defaults import server_error as html_server_error

from monolith.core.errors import error_body

log = logging.getLogger(__name__)


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness and readiness in one: 200 when the database answers, 503 when it does not."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError as exc:
        log.warning("health check: database unavailable: %s", exc)
        return JsonResponse({"status": "unavailable", "checks": {"database": str(exc)}}, status=503)
    return JsonResponse({"status": "ok", "checks": {"database": "ok"}})


def _wants_json(request: HttpRequest) -> bool:
    return request.path.startswith(("/api/", "/internal/"))


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _wants_json(request):
        body = error_body(404, "not_found", f"No resource at {request.path}.")
        return JsonResponse(body, status=404)
    return page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    if _wants_json(request):
        body = error_body(500, "server_error", "The server failed to answer; it has been logged.")
        return JsonResponse(body, status=500)
    return html_server_error(request)
