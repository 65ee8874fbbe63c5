"""Customer accounts: a Django user (login = e-mail) plus the shop's profile."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class Customer(models.Model):
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="customer"
    )
    full_name = models.CharField(max_length=200)
    phone = models.CharField(max_length=40, blank=True)
    address_line = models.CharField(max_length=200, blank=True)
    city = models.CharField(max_length=100, blank=True)
    postal_code = models.CharField(max_length=20, blank=True)
    country = models.CharField(max_length=2, default="DE")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.full_name

    @property
    def email(self) -> str:
        return str(self.user.email)
