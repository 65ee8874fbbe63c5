"""Orders API.

``GET  /api/orders/``              the caller's orders (staff: all; ``?customer=``, ``?status=``)
``POST /api/orders/``              place: ``{"lines": [{"product": id, "quantity": n}]}``
``GET  /api/orders/{id}/``         one order (its customer or staff; others get 404)
``POST /api/orders/{id}/pay/``     placed → paid (its customer or staff)
``POST /api/orders/{id}/cancel/``  placed|paid → cancelled, stock released (its customer or staff)
``POST /api/orders/{id}/ship/``    paid → shipped (staff only)
"""

from __future__ import annotations

from django.db.models import QuerySet
from rest_framework import mixins, permissions, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response

from monolith.customers.services import user_id
from monolith.customers.views import customer_of
from monolith.orders import services
from monolith.orders.models import Order, OrderStatus
from monolith.orders.serializers import OrderSerializer, PlaceOrderSerializer


class OrderViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet[Order]
):
    serializer_class = OrderSerializer
    permission_classes = [permissions.IsAuthenticated]
    filterset_fields = ["status", "customer"]
    ordering_fields = ["placed_at", "id", "total"]
    ordering = ["-placed_at", "-id"]
    lookup_value_regex = r"\d+"

    def get_queryset(self) -> QuerySet[Order]:
        queryset = Order.objects.prefetch_related("lines")
        if self.request.user.is_staff:
            return queryset
        return queryset.filter(customer__user_id=user_id(self.request.user))

    def create(self, request: Request) -> Response:
        customer = customer_of(request)
        serializer = PlaceOrderSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        lines = [
            services.LineRequest(line["product"], line["quantity"])
            for line in serializer.validated_data["lines"]
        ]
        order = services.place_order(customer, lines)
        return Response(self._render(order.pk), status=status.HTTP_201_CREATED)

    def _transition(self, target: OrderStatus) -> Response:
        order = self.get_object()  # 404 unless the caller may see it
        updated = services.transition(order.pk, target)
        return Response(self._render(updated.pk))

    def _render(self, order_id: int) -> object:
        return OrderSerializer(Order.objects.prefetch_related("lines").get(pk=order_id)).data

    @action(detail=True, methods=["post"])
    def pay(self, request: Request, pk: str) -> Response:
        return self._transition(OrderStatus.PAID)

    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str) -> Response:
        return self._transition(OrderStatus.CANCELLED)

    @action(detail=True, methods=["post"])
    def ship(self, request: Request, pk: str) -> Response:
        if not request.user.is_staff:
            raise PermissionDenied("Only staff can ship orders.")
        return self._transition(OrderStatus.SHIPPED)
