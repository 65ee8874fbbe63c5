from __future__ import annotations

from django.apps import AppConfig


class OrdersConfig(AppConfig):
    name = "monolith.orders"
    label = "orders"
