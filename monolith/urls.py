"""URL map of the monolith.

One prefix per app under ``/api/`` so that a route in routing.yaml can move a whole app
(``/api/catalog*``) or a single resource to an extracted service.
"""

from __future__ import annotations

from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from monolith.core import views as core_views

urlpatterns = [
    path("", RedirectView.as_view(url="/shop/", permanent=False)),
    path("healthz", core_views.healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("api/catalog/", include("monolith.catalog.urls")),
    path("api/customers/", include("monolith.customers.urls")),
    path("api/orders/", include("monolith.orders.urls")),
    path("shop/", include("monolith.storefront.urls")),
    path("internal/", include("monolith.internal.urls")),
]

handler404 = "monolith.core.views.not_found"
handler500 = "monolith.core.views.server_error"
