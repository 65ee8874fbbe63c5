from __future__ import annotations

from django.apps import AppConfig


class SyncConfig(AppConfig):
    name = "facade.sync.django"
    label = "strangler_sync"
    verbose_name = "strangler data sync"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from facade.sync.django import ids, recording

        recording.connect()
        post_migrate.connect(ids.ensure_all, sender=self, dispatch_uid="strangler-sync-ids")
