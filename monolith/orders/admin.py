from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from monolith.orders.models import Order, OrderLine


class OrderLineInline(admin.TabularInline[OrderLine, Order]):
    model = OrderLine
    extra = 0
    raw_id_fields = ["product"]


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin[Order]):
    list_display = ["id", "customer", "status", "total", "currency", "placed_at"]
    list_filter = ["status"]
    search_fields = ["id", "customer__full_name", "customer__user__email"]
    date_hierarchy = "placed_at"
    raw_id_fields = ["customer"]
    list_select_related = ["customer"]
    inlines = [OrderLineInline]
    # the status moves through the order rules (orders.services.TRANSITIONS), forward
    # only: an order is two-way during the canary and may never move back (routing.yaml)
    readonly_fields = ["status"]

    def has_delete_permission(self, request: HttpRequest, obj: Order | None = None) -> bool:
        # orders are cancelled, never deleted: the orders service keeps them too
        return False
