from __future__ import annotations

from django.urls import path, re_path

from monolith.internal import views

urlpatterns = [
    path("identity", views.identity, name="internal-identity"),
    path("stock/reservations", views.reserve, name="internal-reserve"),
    re_path(
        rf"^stock/reservations/(?P<key>{views.KEY})/release$",
        views.release,
        name="internal-release",
    ),
]
