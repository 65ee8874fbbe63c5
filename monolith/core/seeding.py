"""Deterministic sample data for the shop: the same ``seed`` gives the same rows, byte for byte.

Rows are built in memory with explicit primary keys and written with ``bulk_create`` in
large batches (then the sequences are moved past them), which is what makes 100,000
orders take seconds instead of minutes. All seeded customers share one password hash,
computed once: hashing thousands of passwords would dominate the run.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.core.management.color import no_style
from django.db import connection, models, transaction
from django.utils.text import slugify
from faker import Faker

from facade.sync.django import ids
from monolith.catalog.models import Category, Product, StockLevel
from monolith.customers.models import Customer
from monolith.orders.models import Order, OrderLine, OrderStatus

DEMO_PASSWORD = "demo-password"  # noqa: S105 - documented demo credential
STAFF_EMAIL = "admin@example.com"
STAFF_PASSWORD = "admin-password"  # noqa: S105 - documented demo credential
# Seeded history ends here, so that runs on different days produce the same rows.
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
BATCH = 5000

DEPARTMENTS: dict[str, list[str]] = {
    "Kitchen": ["Cookware", "Knives", "Coffee & Tea", "Tableware"],
    "Garden": ["Tools", "Planters", "Lighting", "Furniture"],
    "Office": ["Desks", "Chairs", "Stationery", "Storage"],
    "Outdoor": ["Camping", "Backpacks", "Climbing", "Bikes"],
    "Home": ["Bedding", "Bath", "Decor", "Cleaning"],
}
ADJECTIVES = [
    "Classic",
    "Compact",
    "Deluxe",
    "Ergonomic",
    "Heavy-Duty",
    "Lightweight",
    "Modern",
    "Nordic",
    "Premium",
    "Rustic",
    "Smart",
    "Travel",
    "Vintage",
    "Eco",
    "Pro",
]
MATERIALS = [
    "Bamboo",
    "Cast-Iron",
    "Ceramic",
    "Copper",
    "Cotton",
    "Glass",
    "Linen",
    "Oak",
    "Steel",
    "Walnut",
    "Wool",
    "Aluminium",
    "Stoneware",
    "Recycled",
]
STATUS_WEIGHTS = [
    (OrderStatus.SHIPPED, 55),
    (OrderStatus.PAID, 20),
    (OrderStatus.PLACED, 15),
    (OrderStatus.CANCELLED, 10),
]


@dataclass(frozen=True)
class SeedCounts:
    categories: int
    products: int
    customers: int
    orders: int
    order_lines: int


SHOP_MODELS: Sequence[type[models.Model]] = (
    OrderLine,
    Order,
    Customer,
    StockLevel,
    Product,
    Category,
)


def shop_row_count() -> int:
    return sum(model._default_manager.count() for model in SHOP_MODELS)


def reset_shop() -> None:
    """Delete all shop data and every account (TRUNCATE where the database has it)."""
    from django.apps import apps

    tables = [
        apps.get_model(label)._meta.db_table
        for label in (
            "orders.OrderLine",
            "orders.CartItem",
            "orders.Cart",
            "orders.Order",
            "customers.Customer",
            "catalog.StockLevel",
            "catalog.Product",
            "catalog.Category",
            "authtoken.Token",
            "admin.LogEntry",
            "sessions.Session",
            "auth.User_groups",
            "auth.User_user_permissions",
            "auth.User",
        )
    ]
    statements = connection.ops.sql_flush(
        no_style(), tables, reset_sequences=True, allow_cascade=True
    )
    connection.ops.execute_sql_flush(statements)


def _reset_sequences(model_list: Sequence[type[models.Model]]) -> None:
    statements = connection.ops.sequence_reset_sql(no_style(), list(model_list))
    with connection.cursor() as cursor:
        for sql in statements:
            cursor.execute(sql)


def _weighted(rng: random.Random, choices: Sequence[tuple[Any, int]]) -> Callable[[], Any]:
    values = [c for c, _ in choices]
    cumulative = []
    total = 0
    for _, weight in choices:
        total += weight
        cumulative.append(total)
    return lambda: rng.choices(values, cum_weights=cumulative)[0]


def seed_shop(
    *, products: int, customers: int, orders: int, seed: int, progress: Callable[[str], None]
) -> SeedCounts:
    """Fill an empty shop. The caller checks emptiness (or resets) first."""
    rng = random.Random(seed)  # noqa: S311 - sample data must be reproducible, not secret
    fake = Faker("en_US")
    fake.seed_instance(seed)
    user_model = get_user_model()

    with transaction.atomic():
        # Categories: departments with sub-categories.
        categories: list[Category] = []
        leaves: list[Category] = []
        for dept, subs in DEPARTMENTS.items():
            parent = Category(
                id=len(categories) + 1,
                name=dept,
                slug=slugify(dept),
                description=f"Everything for the {dept.lower()}.",
            )
            categories.append(parent)
            for sub in subs:
                child = Category(
                    id=len(categories) + 1,
                    name=sub,
                    slug=slugify(f"{dept}-{sub}"),
                    parent_id=parent.id,
                    description=fake.sentence(nb_words=10),
                )
                categories.append(child)
                leaves.append(child)
        Category.objects.bulk_create([c for c in categories if c.parent_id is None])
        Category.objects.bulk_create([c for c in categories if c.parent_id is not None])
        progress(f"{len(categories)} categories")

        # Products and their stock.
        product_rows: list[Product] = []
        stock_rows: list[StockLevel] = []
        prices: list[Decimal] = []
        skus: list[str] = []
        for i in range(1, products + 1):
            leaf = leaves[rng.randrange(len(leaves))]
            name = f"{rng.choice(ADJECTIVES)} {rng.choice(MATERIALS)} {leaf.name.split()[0]}"
            price = Decimal(rng.randrange(199, 49999)) / 100
            created = EPOCH - timedelta(days=rng.randrange(400, 2000), seconds=rng.randrange(86400))
            sku = f"SKU-{i:06d}"
            product_rows.append(
                Product(
                    id=i,
                    sku=sku,
                    name=name,
                    slug=f"{slugify(name)}-{i}",
                    description=fake.paragraph(nb_sentences=3),
                    category_id=leaf.id,
                    price=price,
                    currency="EUR",
                    is_active=rng.random() > 0.02,
                    created_at=created,
                    updated_at=created,
                )
            )
            on_hand = 0 if rng.random() < 0.05 else rng.randrange(1, 500)
            stock_rows.append(StockLevel(id=i, product_id=i, on_hand=on_hand, updated_at=EPOCH))
            prices.append(price)
            skus.append(sku)
        Product.objects.bulk_create(product_rows, batch_size=BATCH)
        StockLevel.objects.bulk_create(stock_rows, batch_size=BATCH)
        progress(f"{products} products with stock")

        # Staff and customers (one hash shared by all seeded customers).
        customer_hash = make_password(DEMO_PASSWORD, salt=f"seed{seed}")
        staff = user_model(
            id=1,
            username=STAFF_EMAIL,
            email=STAFF_EMAIL,
            is_staff=True,
            is_superuser=True,
            password=make_password(STAFF_PASSWORD, salt=f"seed{seed}"),
            date_joined=EPOCH,
        )
        users = [staff]
        customer_rows: list[Customer] = []
        joined: list[datetime] = []
        for i in range(1, customers + 1):
            first, last = fake.first_name(), fake.last_name()
            email = f"customer{i}@example.com"
            when = EPOCH - timedelta(days=rng.randrange(30, 1500), seconds=rng.randrange(86400))
            users.append(
                user_model(
                    id=i + 1,
                    username=email,
                    email=email,
                    first_name=first,
                    last_name=last,
                    password=customer_hash,
                    date_joined=when,
                )
            )
            customer_rows.append(
                Customer(
                    id=i,
                    user_id=i + 1,
                    full_name=f"{first} {last}",
                    phone=fake.numerify("+49 30 ########"),
                    address_line=fake.street_address(),
                    city=fake.city(),
                    postal_code=fake.postcode(),
                    country=rng.choice(["DE", "DE", "DE", "AT", "CH", "NL", "FR"]),
                    created_at=when,
                )
            )
            joined.append(when)
        user_model.objects.bulk_create(users, batch_size=BATCH)
        Customer.objects.bulk_create(customer_rows, batch_size=BATCH)
        progress(f"{customers} customers and 1 staff account")

        # Order history: a few popular products sell most (Pareto-like skew).
        line_count = 0
        if orders and customers and products:
            status_of = _weighted(rng, STATUS_WEIGHTS)
            order_batch: list[Order] = []
            line_batch: list[OrderLine] = []
            line_id = 0
            for order_id in range(1, orders + 1):
                customer_index = rng.randrange(customers)
                span = max(1, int((EPOCH - joined[customer_index]).total_seconds()))
                placed = EPOCH - timedelta(seconds=rng.randrange(span))
                status = status_of()
                total = Decimal("0.00")
                chosen: set[int] = set()
                for _ in range(rng.choice((1, 1, 2, 2, 3, 4))):
                    product_index = min(int(rng.paretovariate(1.2)) - 1, products - 1)
                    product_index = (product_index * 7919 + order_id % 3) % products
                    if product_index in chosen:
                        continue
                    chosen.add(product_index)
                    quantity = rng.choice((1, 1, 1, 2, 3))
                    line_id += 1
                    line_batch.append(
                        OrderLine(
                            id=line_id,
                            order_id=order_id,
                            product_id=product_index + 1,
                            sku=skus[product_index],
                            quantity=quantity,
                            unit_price=prices[product_index],
                        )
                    )
                    total += prices[product_index] * quantity
                order_batch.append(
                    Order(
                        id=order_id,
                        customer_id=customer_index + 1,
                        status=status,
                        currency="EUR",
                        total=total,
                        placed_at=placed,
                        updated_at=placed,
                        paid_at=placed + timedelta(minutes=5)
                        if status in ("paid", "shipped")
                        else None,
                        shipped_at=placed + timedelta(days=1) if status == "shipped" else None,
                        cancelled_at=placed + timedelta(hours=2) if status == "cancelled" else None,
                    )
                )
                if len(order_batch) >= BATCH:
                    Order.objects.bulk_create(order_batch)
                    OrderLine.objects.bulk_create(line_batch)
                    order_batch, line_batch = [], []
                    progress(f"{order_id} / {orders} orders")
            Order.objects.bulk_create(order_batch)
            OrderLine.objects.bulk_create(line_batch)
            line_count = line_id
        progress(f"{orders} orders with {line_count} lines")

        _reset_sequences([Category, Product, StockLevel, user_model, Customer, Order, OrderLine])
        ids.resync(Order)  # new orders take ids from the sync's allocator: past these
    return SeedCounts(len(categories), products, customers, orders, line_count)
