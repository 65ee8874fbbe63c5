from __future__ import annotations

from django.apps import AppConfig


class OutboxConfig(AppConfig):
    name = "monolith.outbox"
    label = "outbox"
    verbose_name = "transactional outbox"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from monolith.outbox import recording

        recording.connect()
