"""Server-rendered shop pages under ``/shop/``: browse, cart, checkout, my orders.

They call the same services as the JSON API, so a rule holds however an order is placed.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from monolith.catalog.models import Category, Product
from monolith.core.errors import ShopError
from monolith.customers.models import Customer
from monolith.customers.services import user_id
from monolith.orders import services
from monolith.orders.models import Order, OrderStatus

PAGE_SIZE = 24


def _customer(request: HttpRequest) -> Customer | None:
    customer = getattr(request.user, "customer", None)
    return customer if isinstance(customer, Customer) else None


def product_list(request: HttpRequest) -> HttpResponse:
    products = Product.objects.filter(is_active=True).select_related("category", "stock")
    query = request.GET.get("q", "").strip()
    if query:
        products = products.filter(Q(name__icontains=query) | Q(sku__iexact=query))
    category = request.GET.get("category", "")
    if category:
        products = products.filter(Q(category__slug=category) | Q(category__parent__slug=category))
    page = Paginator(products.order_by("name", "id"), PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "page": page,
        "query": query,
        "category": category,
        "categories": Category.objects.filter(parent__isnull=True),
    }
    return render(request, "storefront/product_list.html", context)


def product_detail(request: HttpRequest, product_id: int) -> HttpResponse:
    product = get_object_or_404(
        Product.objects.select_related("category", "stock"), pk=product_id, is_active=True
    )
    return render(request, "storefront/product_detail.html", {"product": product})


@login_required
def cart(request: HttpRequest) -> HttpResponse:
    customer = _customer(request)
    if customer is None:
        messages.error(request, "Only customer accounts have a cart.")
        return redirect("storefront:products")
    items = services.cart_of(customer).items.select_related("product")
    return render(request, "storefront/cart.html", {"items": items})


@login_required
@require_POST
def cart_update(request: HttpRequest) -> HttpResponse:
    customer = _customer(request)
    if customer is None:
        messages.error(request, "Only customer accounts have a cart.")
        return redirect("storefront:products")
    try:
        product_id = int(request.POST["product"])
        quantity = int(request.POST.get("quantity", "1"))
        services.set_cart_quantity(customer, product_id, quantity)
    except (KeyError, ValueError):
        messages.error(request, "Choose a product and a whole quantity.")
    except ShopError as exc:
        messages.error(request, exc.message)
    return redirect("storefront:cart")


@login_required
@require_POST
def checkout(request: HttpRequest) -> HttpResponse:
    customer = _customer(request)
    if customer is None:
        return redirect("storefront:products")
    try:
        order = services.checkout(customer)
    except ShopError as exc:
        messages.error(request, exc.message)
        return redirect("storefront:cart")
    messages.success(request, f"Order {order.pk} placed.")
    return redirect("storefront:order", order_id=order.pk)


@login_required
def order_list(request: HttpRequest) -> HttpResponse:
    orders = Order.objects.filter(customer__user_id=user_id(request.user)).order_by(
        "-placed_at", "-id"
    )
    page = Paginator(orders, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "storefront/order_list.html", {"page": page})


@login_required
def order_detail(request: HttpRequest, order_id: int) -> HttpResponse:
    order = get_object_or_404(
        Order.objects.prefetch_related("lines__product"),
        pk=order_id,
        customer__user_id=user_id(request.user),
    )
    return render(request, "storefront/order_detail.html", {"order": order})


@login_required
@require_POST
def order_action(request: HttpRequest, order_id: int, action: str) -> HttpResponseRedirect:
    get_object_or_404(Order, pk=order_id, customer__user_id=user_id(request.user))
    target = {"pay": OrderStatus.PAID, "cancel": OrderStatus.CANCELLED}.get(action)
    if target is None:
        messages.error(request, f"Unknown action {action!r}.")
    else:
        try:
            services.transition(order_id, target)
            messages.success(request, f"Order {order_id} is now {target}.")
        except ShopError as exc:
            messages.error(request, exc.message)
    return redirect("storefront:order", order_id=order_id)
