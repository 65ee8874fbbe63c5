"""The HTTP contract of the shop's JSON API, runnable against any base URL.

By default the suite starts the monolith under gunicorn on PostgreSQL and runs twice:
against the monolith directly, and through the facade (``strangler serve``) in front of
it — the facade must be invisible to the API's clients.
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

from tests.facade.proxy import proxy
from tests.servers import MonolithServer


@dataclass(frozen=True)
class Target:
    base_url: str
    staff_token: str | None


def _given_url(config: pytest.Config) -> str | None:
    url = config.getoption("--base-url") or os.environ.get("STRANGLER_CONTRACT_URL")
    return str(url).rstrip("/") if url else None


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "via" in metafunc.fixturenames:
        via = ["given"] if _given_url(metafunc.config) else ["monolith", "facade"]
        metafunc.parametrize("via", via, scope="session")


@pytest.fixture(scope="session")
def facade_in_front(
    pg_monolith: MonolithServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    routing = tmp_path_factory.mktemp("contract") / "routing.yaml"
    routing.write_text(
        "version: 1\n"
        f"backends:\n  monolith: {{kind: monolith, url: '{pg_monolith.base_url}'}}\n"
        "routes:\n"
        "  - {name: catalog, match: {paths: ['/api/catalog/*']}, targets: monolith}\n"
        "  - name: orders\n"
        "    match: {paths: ['/api/orders', '/api/orders/*']}\n"
        "    targets: monolith\n"
        "    stickiness: {duration: 60}\n"
        "default: monolith\n"
    )
    with proxy(routing) as running:
        yield running.url


@pytest.fixture(scope="session")
def target(request: pytest.FixtureRequest, via: str) -> Target:
    token = request.config.getoption("--staff-token") or os.environ.get(
        "STRANGLER_CONTRACT_STAFF_TOKEN"
    )
    given = _given_url(request.config)
    if given:
        return Target(given, token)
    server: MonolithServer = request.getfixturevalue("pg_monolith")
    if via == "facade":
        return Target(request.getfixturevalue("facade_in_front"), server.staff_token)
    return Target(server.base_url, server.staff_token)


@pytest.fixture(scope="session")
def api(target: Target) -> Iterator[httpx.Client]:
    """An anonymous client of the API under test."""
    with httpx.Client(base_url=target.base_url, timeout=30) as client:
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


def register(target: Target, api: httpx.Client) -> Account:
    email = f"contract-{uuid.uuid4().hex[:12]}@example.com"
    password = "Contract-" + uuid.uuid4().hex[:12]
    response = api.post(
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
def customer(target: Target, api: httpx.Client) -> Iterator[Account]:
    """A freshly registered customer, with a client that sends its token."""
    account = register(target, api)
    yield account
    account.client.close()


@pytest.fixture
def other_customer(target: Target, api: httpx.Client) -> Iterator[Account]:
    account = register(target, api)
    yield account
    account.client.close()
