"""The HTTP contract of the shop's JSON API, runnable against any base URL.

By default the suite starts the monolith under gunicorn on PostgreSQL and tests it.
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


@dataclass(frozen=True)
class Target:
    base_url: str
    staff_token: str | None


@pytest.fixture(scope="session")
def target(request: pytest.FixtureRequest) -> Target:
    url = request.config.getoption("--base-url") or os.environ.get("STRANGLER_CONTRACT_URL")
    token = request.config.getoption("--staff-token") or os.environ.get(
        "STRANGLER_CONTRACT_STAFF_TOKEN"
    )
    if url:
        return Target(url.rstrip("/"), token)
    server = request.getfixturevalue("pg_monolith")
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
