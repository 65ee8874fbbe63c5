from __future__ import annotations

from rest_framework.routers import SimpleRouter

from monolith.catalog import views

router = SimpleRouter()
router.register("products", views.ProductViewSet, basename="product")
router.register("categories", views.CategoryViewSet, basename="category")

urlpatterns = router.urls
