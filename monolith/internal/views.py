"""Internal endpoints the extracted services call.

``GET  /internal/identity``                          who the caller's API token belongs to
``POST /internal/stock/reservations``                take stock under an idempotency key
``POST /internal/stock/reservations/{key}/release``  give it back (idempotent)

Reservations answer 201 when stock was taken now, 200 when the key had already taken it
(a retry), and the shop's usual errors otherwise (404 unknown product, 409 out_of_stock
or a key conflict, 400 validation) in the shop's error envelope.
"""

from __future__ import annotations

from typing import Any

from rest_framework import permissions, serializers, status
from rest_framework.decorators import api_view, permission_classes
from rest_framework.request import Request
from rest_framework.response import Response

from monolith.catalog import stock
from monolith.customers.models import Customer
from monolith.internal.auth import HasServiceToken

KEY = r"[A-Za-z0-9_.:-]{8,128}"


@api_view(["GET"])
@permission_classes([permissions.IsAuthenticated])
def identity(request: Request) -> Response:
    user = request.user
    customer = getattr(user, "customer", None)
    return Response(
        {
            "user": user.pk,
            "customer": customer.pk if isinstance(customer, Customer) else None,
            "staff": bool(user.is_staff),
        }
    )


class _Line(serializers.Serializer[Any]):
    product = serializers.IntegerField(min_value=1)
    quantity = serializers.IntegerField(min_value=1, max_value=1000)


class _ReservationRequest(serializers.Serializer[Any]):
    key = serializers.RegexField(KEY)
    lines = _Line(many=True, allow_empty=False)


@api_view(["POST"])
@permission_classes([HasServiceToken])
def reserve(request: Request) -> Response:
    body = _ReservationRequest(data=request.data)
    body.is_valid(raise_exception=True)
    reservation, created = stock.reserve(
        body.validated_data["key"],
        ((line["product"], line["quantity"]) for line in body.validated_data["lines"]),
    )
    return Response(
        stock.describe(reservation),
        status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
    )


@api_view(["POST"])
@permission_classes([HasServiceToken])
def release(request: Request, key: str) -> Response:
    reservation, _ = stock.release(key)
    return Response(stock.describe(reservation))
