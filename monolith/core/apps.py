from __future__ import annotations

from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "monolith.core"
    label = "core"
    verbose_name = "Shop core"
