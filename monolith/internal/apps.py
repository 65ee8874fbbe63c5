from __future__ import annotations

from django.apps import AppConfig


class InternalConfig(AppConfig):
    name = "monolith.internal"
    label = "internal"
    verbose_name = "internal API for extracted services"
