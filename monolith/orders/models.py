"""Carts, orders and order lines.

An order moves ``placed → paid → shipped``, or to ``cancelled`` from placed or paid;
``orders.services.TRANSITIONS`` is the single statement of that rule.
"""

from __future__ import annotations

from decimal import Decimal

from django.db import models
from django.utils import timezone

from monolith.catalog.models import Product
from monolith.customers.models import Customer


class OrderStatus(models.TextChoices):
    PLACED = "placed"
    PAID = "paid"
    SHIPPED = "shipped"
    CANCELLED = "cancelled"


class Order(models.Model):
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="orders")
    status = models.CharField(
        max_length=16, choices=OrderStatus.choices, default=OrderStatus.PLACED
    )
    currency = models.CharField(max_length=3, default="EUR")
    total = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0.00"))
    placed_at = models.DateTimeField(default=timezone.now)
    paid_at = models.DateTimeField(null=True, blank=True)
    shipped_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)
    # the stock reservation holding this order's stock, for orders placed by a service
    # that reserves through the internal API (the orders Lambda); blank: taken directly
    stock_reservation = models.CharField(max_length=128, blank=True, default="")

    class Meta:
        ordering = ["-placed_at", "-id"]
        indexes = [
            models.Index(fields=["customer", "placed_at"]),
            models.Index(fields=["status", "placed_at"]),
        ]

    def __str__(self) -> str:
        return f"order {self.pk} ({self.status})"


class OrderLine(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines")
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="order_lines")
    sku = models.CharField(max_length=32)
    quantity = models.PositiveIntegerField()
    unit_price = models.DecimalField(max_digits=10, decimal_places=2)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(quantity__gt=0), name="line_quantity_positive"
            )
        ]

    def __str__(self) -> str:
        return f"{self.quantity} x {self.sku}"

    @property
    def line_total(self) -> Decimal:
        return self.unit_price * self.quantity


class Cart(models.Model):
    customer = models.OneToOneField(Customer, on_delete=models.CASCADE, related_name="cart")
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"cart of {self.customer_id}"


class CartItem(models.Model):
    cart = models.ForeignKey(Cart, on_delete=models.CASCADE, related_name="items")
    product = models.ForeignKey(Product, on_delete=models.CASCADE)
    quantity = models.PositiveIntegerField()

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["cart", "product"], name="one_item_per_product"),
            models.CheckConstraint(
                condition=models.Q(quantity__gt=0), name="cart_quantity_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} x product {self.product_id}"
