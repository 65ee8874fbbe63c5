from __future__ import annotations

from rest_framework.routers import SimpleRouter

from monolith.customers import views

router = SimpleRouter()
router.register("", views.CustomerViewSet, basename="customer")

urlpatterns = router.urls
