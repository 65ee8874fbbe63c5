from __future__ import annotations

from django.apps import AppConfig


class CatalogServiceConfig(AppConfig):
    name = "extracted.catalog"
    label = "catalog_service"
    verbose_name = "catalog service"
