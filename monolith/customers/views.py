"""Customer API: register, obtain a token, read and edit one's own profile.

``POST /api/customers/``          register (public) → 201 with the profile and a token
``POST /api/customers/token/``    e-mail + password → token (401 on bad credentials)
``GET|PATCH /api/customers/me/``  the caller's profile
``GET /api/customers/``           every customer (staff only)
``GET /api/customers/{id}/``      one customer (staff, or the customer themself)
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from rest_framework import mixins, permissions, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import AuthenticationFailed, PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response

from monolith.customers import services
from monolith.customers.models import Customer
from monolith.customers.serializers import (
    CustomerSerializer,
    RegistrationSerializer,
    TokenRequestSerializer,
)


def customer_of(request: Request) -> Customer:
    """The caller's customer profile; 403 for accounts that have none (e.g. staff)."""
    customer = getattr(request.user, "customer", None)
    if not isinstance(customer, Customer):
        raise PermissionDenied("This account has no customer profile.")
    return customer


class CustomerViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet[Customer]
):
    serializer_class = CustomerSerializer
    lookup_value_regex = r"\d+"
    search_fields = ["full_name", "user__email"]
    ordering_fields = ["id", "created_at"]
    ordering = ["id"]
    filterset_fields = ["country"]

    def get_permissions(self) -> list[Any]:
        if self.action in {"create", "token"}:
            return [permissions.AllowAny()]
        if self.action == "list":
            return [permissions.IsAdminUser()]
        return [permissions.IsAuthenticated()]

    def get_queryset(self) -> QuerySet[Customer]:
        queryset = Customer.objects.select_related("user")
        if self.request.user.is_staff:
            return queryset
        return queryset.filter(user_id=services.user_id(self.request.user))

    def create(self, request: Request) -> Response:
        serializer = RegistrationSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        customer = services.register_customer(data.pop("email"), data.pop("password"), **data)
        body = dict(CustomerSerializer(customer).data)
        body["token"] = services.token_for(customer.user)
        return Response(body, status=status.HTTP_201_CREATED)

    @action(detail=False, methods=["post"])
    def token(self, request: Request) -> Response:
        serializer = TokenRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = services.authenticate_email(
            serializer.validated_data["email"], serializer.validated_data["password"]
        )
        if user is None:
            raise AuthenticationFailed("E-mail or password is wrong.")
        return Response({"token": services.token_for(user)})

    @action(detail=False, methods=["get", "patch"])
    def me(self, request: Request) -> Response:
        customer = customer_of(request)
        if request.method == "PATCH":
            serializer = CustomerSerializer(customer, data=request.data, partial=True)
            serializer.is_valid(raise_exception=True)
            serializer.save()
            return Response(serializer.data)
        return Response(CustomerSerializer(customer).data)
