from __future__ import annotations

from rest_framework.routers import SimpleRouter

from monolith.orders import views

router = SimpleRouter()
router.register("", views.OrderViewSet, basename="order")

urlpatterns = router.urls
