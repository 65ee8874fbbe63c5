"""Service-to-service authentication: a shared token in ``X-Service-Token``.

``STRANGLER_SERVICE_TOKEN`` (setting, from the environment) holds the token; while it is
unset the internal endpoints that need it answer 404, as if they did not exist. On AWS
the token lives in Secrets Manager and reaches both sides as an environment variable.
"""

from __future__ import annotations

import hmac
from typing import Any

from django.conf import settings
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

HEADER = "X-Service-Token"


class HasServiceToken(BasePermission):
    def has_permission(self, request: Request, view: Any) -> bool:
        expected = str(getattr(settings, "STRANGLER_SERVICE_TOKEN", "") or "")
        if not expected:
            raise NotFound()
        given = request.headers.get(HEADER, "")
        if not hmac.compare_digest(given.encode(), expected.encode()):
            raise PermissionDenied(f"A valid {HEADER} header is required.")
        return True
