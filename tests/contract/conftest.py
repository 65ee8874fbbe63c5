"""The HTTP contract of the shop's JSON API, runnable against any base URL.

By default the suite starts the monolith under gunicorn on PostgreSQL and runs each test
against every deployment that serves its area (``DEPLOYMENTS``): the monolith; the
facade in front of it with every route on the monolith; each extracted service directly
(the catalog service under gunicorn, the orders Lambda through API Gateway HTTP API
events); and the facade with that service's route at 100 % (ALB events for the Lambda).
Behaviour must be the same everywhere — the cut must be invisible to the API's clients.
``pytest tests/contract --base-url URL [--staff-token T]`` points the same suite at
another deployment: an extracted service, the facade, a staging box. The suite only
needs a seeded shop there; it discovers products through the API and registers its
own customers, so it never depends on ids.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.servers import MonolithServer


@dataclass(frozen=True)
class Target:
    base_url: str  # the deployment under test
    staff_token: str | None
    shop_url: str  # where the routes it does not serve answer (registration, stock)


# Each deployment the suite runs against, and the API areas it serves. A test module
# names its area (``AREA``) and runs against every deployment that serves it.
DEPLOYMENTS: dict[str, frozenset[str]] = {
    "monolith": frozenset({"catalog", "customers", "orders"}),
    "facade": frozenset({"catalog", "customers", "orders"}),  # every route on the monolith
    "catalog-service": frozenset({"catalog"}),  # the ECS service, directly
    "facade-catalog": frozenset({"catalog"}),  # facade, catalog route 100 % on the service
    "orders-lambda": frozenset({"orders"}),  # the function, through API Gateway events
    "facade-orders": frozenset({"orders"}),  # facade, orders route 100 % on the Lambda
}


def _given_url(config: pytest.Config) -> str | None:
    url = config.getoption("--base-url") or os.environ.get("STRANGLER_CONTRACT_URL")
    return str(url).rstrip("/") if url else None


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "via" in metafunc.fixturenames:
        area = getattr(metafunc.module, "AREA", None)
        if _given_url(metafunc.config):
            via = ["given"]
        else:
            via = [name for name, areas in DEPLOYMENTS.items() if area is None or area in areas]
        metafunc.parametrize("via", via, scope="session")


@pytest.fixture(scope="session")
def target(request: pytest.FixtureRequest, via: str) -> Target:
    token = request.config.getoption("--staff-token") or os.environ.get(
        "STRANGLER_CONTRACT_STAFF_TOKEN"
    )
    given = _given_url(request.config)
    if given:
        return Target(given, token, given)
    server: MonolithServer = request.getfixturevalue("pg_monolith")
    if via == "monolith":
        return Target(server.base_url, server.staff_token, server.base_url)
    url = request.getfixturevalue(via.replace("-", "_") if via != "facade" else "facade_in_front")
    # A facade is the whole shop; a service alone needs the monolith for the rest.
    shop = url if via.startswith("facade") else server.base_url
    return Target(url, server.staff_token, shop)


@pytest.fixture(scope="session")
def api(target: Target) -> Iterator[httpx.Client]:
    """An anonymous client of the API under test."""
    with httpx.Client(base_url=target.base_url, timeout=30) as client:
        yield client


@pytest.fixture(scope="session")
def shop(target: Target) -> Iterator[httpx.Client]:
    """An anonymous client of the whole shop: registration, and stock through the catalog."""
    with httpx.Client(base_url=target.shop_url, timeout=30) as client:
        yield client


@pytest.fixture(scope="session")
def staff(target: Target) -> Iterator[httpx.Client]:
    if not target.staff_token:
        pytest.skip("no staff token for this target (--staff-token)")
    headers = {"Authorization": f"Token {target.staff_token}"}
    with httpx.Client(base_url=target.base_url, timeout=30, headers=headers) as client:
        yield client


@dataclass
class Account:
    id: int
    email: str
    password: str
    token: str
    client: httpx.Client


def register(target: Target, shop: httpx.Client) -> Account:
    email = f"contract-{uuid.uuid4().hex[:12]}@example.com"
    password = "Contract-" + uuid.uuid4().hex[:12]
    response = shop.post(
        "/api/customers/",
        json={
            "email": email,
            "password": password,
            "full_name": "Contract Tester",
            "city": "Berlin",
        },
    )
    assert response.status_code == 201, response.text
    body = response.json()
    client = httpx.Client(
        base_url=target.base_url, timeout=30, headers={"Authorization": f"Token {body['token']}"}
    )
    return Account(body["id"], email, password, body["token"], client)


@pytest.fixture
def customer(target: Target, shop: httpx.Client) -> Iterator[Account]:
    """A freshly registered customer, with a client of the target that sends its token."""
    account = register(target, shop)
    yield account
    account.client.close()


@pytest.fixture
def other_customer(target: Target, shop: httpx.Client) -> Iterator[Account]:
    account = register(target, shop)
    yield account
    account.client.close()
