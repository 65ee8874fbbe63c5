from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.urls import path

from monolith.storefront import views

app_name = "storefront"

urlpatterns = [
    path("", views.product_list, name="products"),
    path("products/<int:product_id>/", views.product_detail, name="product"),
    path("cart/", views.cart, name="cart"),
    path("cart/update/", views.cart_update, name="cart-update"),
    path("checkout/", views.checkout, name="checkout"),
    path("orders/", views.order_list, name="orders"),
    path("orders/<int:order_id>/", views.order_detail, name="order"),
    path("orders/<int:order_id>/<str:action>/", views.order_action, name="order-action"),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
]
