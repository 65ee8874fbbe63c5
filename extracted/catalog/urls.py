"""URL map of the catalog service: the catalog API and a health check, nothing else."""

from __future__ import annotations

from django.urls import include, path

from monolith.core import views as core_views

urlpatterns = [
    path("healthz", core_views.healthz, name="healthz"),
    path("api/catalog/", include("monolith.catalog.urls")),
]

handler404 = "monolith.core.views.not_found"
handler500 = "monolith.core.views.server_error"
