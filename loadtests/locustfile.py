"""The shop's real traffic through the facade, seen per backend: ``make loadtest``.

    .venv/bin/locust -f loadtests/locustfile.py --host http://127.0.0.1:8000

Two traffic profiles, as the shop's logs would show them:

* ``Browser`` (3 of 4 users): the catalog's list pages, searches, category pages and
  product pages, and the storefront; anonymous, 1-4 s between pages;
* ``Buyer`` (1 of 4): logs in on start (one of the seeded customers, ``--customers``),
  lists and opens their orders, places orders, pays some of them; 2-6 s between steps.

Parametrised URLs are grouped with ``name=`` (``/api/catalog/products/[id]/``). An order
refused for stock (409 ``out_of_stock``) or a payment of an order that changed meanwhile
(409 ``invalid_transition``) is the shop answering correctly, not a failure. A buyer keeps
the facade's stickiness cookie, so the orders it places and pays stay on one side.

Every request is also tallied by the backend that answered (``backend_stats``): a table
when the run ends, ``PREFIX_backends.csv`` with ``--csv PREFIX``, a Backends tab in the
web UI. Add ``loadtests/shapes.py`` to the ``-f`` list for a stepped ramp.
"""

from __future__ import annotations

import random
from typing import Any

from backend_stats import install_listener, on
from locust import HttpUser, between, events, task
from locust.env import Environment

SEARCHES = ("chair", "lamp", "steel", "oak", "blue", "mug", "desk", "kit")
BUSINESS_CONFLICTS = {"out_of_stock", "invalid_transition"}

backends = install_listener()


@on(events.init_command_line_parser)
def _(parser: Any) -> None:
    group = parser.add_argument_group("strangler shop")
    group.add_argument("--customers", type=int, default=200, env_var="SHOP_CUSTOMERS",
                       help="seeded customers to log in as (customer1..N@example.com)")  # fmt: skip
    group.add_argument("--password", default="demo-password", env_var="SHOP_PASSWORD",
                       help="their password (the seed's)")  # fmt: skip


class Catalog:
    """Product ids seen on list pages, shared by the users of one process."""

    ids: list[int] = []

    @classmethod
    def remember(cls, payload: Any) -> None:
        for product in payload.get("results", []) if isinstance(payload, dict) else []:
            if len(cls.ids) < 2000 and product.get("stock", 1) > 0:
                cls.ids.append(int(product["id"]))

    @classmethod
    def pick(cls, count: int = 1) -> list[int]:
        return random.sample(cls.ids, min(count, len(cls.ids))) if cls.ids else []


class Browser(HttpUser):
    weight = 3
    wait_time = between(1, 4)

    @task(5)
    def product_list(self) -> None:
        page = random.randint(1, 5)
        with self.client.get(
            f"/api/catalog/products/?page={page}", name="/api/catalog/products/?page=[n]",
            catch_response=True,
        ) as response:  # fmt: skip
            if response.status_code == 404:  # past the last page: not an error
                response.success()
            elif response.ok:
                Catalog.remember(response.json())

    @task(3)
    def search(self) -> None:
        term = random.choice(SEARCHES)
        self.client.get(
            f"/api/catalog/products/?search={term}", name="/api/catalog/products/?search=[term]"
        )

    @task(4)
    def product(self) -> None:
        for product_id in Catalog.pick():
            self.client.get(
                f"/api/catalog/products/{product_id}/", name="/api/catalog/products/[id]/"
            )

    @task(1)
    def in_stock(self) -> None:
        self.client.get("/api/catalog/products/?in_stock=true&ordering=price",
                        name="/api/catalog/products/?in_stock=true")  # fmt: skip

    @task(2)
    def storefront(self) -> None:
        self.client.get("/shop/", name="/shop/")


class Buyer(HttpUser):
    weight = 1
    wait_time = between(2, 6)

    def on_start(self) -> None:
        options = self.environment.parsed_options
        customers = getattr(options, "customers", 200)
        password = getattr(options, "password", "demo-password")
        email = f"customer{random.randint(1, customers)}@example.com"
        response = self.client.post(
            "/api/customers/token/", json={"email": email, "password": password},
            name="/api/customers/token/",
        )  # fmt: skip
        token = response.json().get("token") if response.ok else None
        self.headers = {"Authorization": f"Token {token}"} if token else {}
        self.orders: list[int] = []
        if not Catalog.ids:
            listing = self.client.get(
                "/api/catalog/products/?in_stock=true", name="/api/catalog/products/?in_stock=true"
            )
            if listing.ok:
                Catalog.remember(listing.json())

    def _conflict_is_fine(self, response: Any) -> None:
        try:
            code = response.json()["error"]["code"]
        except (ValueError, KeyError, TypeError):
            return
        if response.status_code == 409 and code in BUSINESS_CONFLICTS:
            response.success()

    @task(3)
    def my_orders(self) -> None:
        self.client.get("/api/orders/", headers=self.headers, name="/api/orders/")

    @task(2)
    def open_order(self) -> None:
        if self.orders:
            order = random.choice(self.orders)
            self.client.get(f"/api/orders/{order}/", headers=self.headers, name="/api/orders/[id]/")

    @task(2)
    def place_order(self) -> None:
        products = Catalog.pick(random.choice((1, 1, 2)))
        if not products:
            return
        lines = [{"product": p, "quantity": 1} for p in products]
        with self.client.post("/api/orders/", json={"lines": lines}, headers=self.headers,
                              name="/api/orders/", catch_response=True) as response:  # fmt: skip
            if response.status_code == 201:
                self.orders.append(int(response.json()["id"]))
            else:
                self._conflict_is_fine(response)

    @task(1)
    def pay(self) -> None:
        if not self.orders:
            return
        order = self.orders.pop(random.randrange(len(self.orders)))
        with self.client.post(
            f"/api/orders/{order}/pay/", headers=self.headers, name="/api/orders/[id]/pay/",
            catch_response=True,
        ) as response:  # fmt: skip
            self._conflict_is_fine(response)


@on(events.test_start)
def _reset_catalog(environment: Environment, **_: Any) -> None:
    Catalog.ids.clear()
