from __future__ import annotations

from django.contrib import admin

from monolith.customers.models import Customer


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin[Customer]):
    list_display = ["id", "full_name", "email", "city", "country", "created_at"]
    list_filter = ["country"]
    search_fields = ["full_name", "user__email"]
    list_select_related = ["user"]
    raw_id_fields = ["user"]
