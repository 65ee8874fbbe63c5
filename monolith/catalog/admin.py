from __future__ import annotations

from django.contrib import admin

from monolith.catalog.models import Category, Product, StockLevel


class StockInline(admin.StackedInline[StockLevel, Product]):
    model = StockLevel
    can_delete = False


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin[Category]):
    list_display = ["name", "slug", "parent"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin[Product]):
    list_display = ["sku", "name", "category", "price", "is_active"]
    list_filter = ["is_active", "category"]
    search_fields = ["sku", "name"]
    list_select_related = ["category"]
    inlines = [StockInline]
