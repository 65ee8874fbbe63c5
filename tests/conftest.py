"""Fixtures shared by every test package, and the options of the contract suite."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from pytest_django.fixtures import Settings

from extracted.orders.store import create_table
from facade import aws_local
from tests.facade.proxy import proxy
from tests.servers import (
    FAST_HASHERS,
    MonolithServer,
    catalog_server,
    monolith_server,
    orders_environment,
    orders_function,
    scratch_database,
)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("contract", "HTTP contract suite")
    group.addoption(
        "--base-url",
        default=None,
        help="Run the contract suite against this URL instead of a monolith it starts itself "
        "(env STRANGLER_CONTRACT_URL).",
    )
    group.addoption(
        "--staff-token",
        default=None,
        help="API token of a staff account at --base-url; staff-only checks are skipped "
        "without one (env STRANGLER_CONTRACT_STAFF_TOKEN).",
    )


@pytest.fixture(scope="session")
def pg_monolith() -> Iterator[MonolithServer]:
    """The seeded monolith under gunicorn, on its own PostgreSQL database."""
    with scratch_database() as url, monolith_server(url) as server:
        yield server


@pytest.fixture(scope="session")
def aws_endpoints() -> Iterator[aws_local.Endpoints]:
    """The AWS-API stand-ins (moto, dynalite) on free loopback ports, for the session."""
    with aws_local.running() as endpoints:
        yield endpoints


@pytest.fixture(scope="session")
def orders_table(aws_endpoints: aws_local.Endpoints) -> tuple[aws_local.Endpoints, str]:
    """(stand-ins, name) of a fresh orders table in the DynamoDB stand-in."""
    name = f"orders-{uuid.uuid4().hex[:8]}"
    client = boto3.client("dynamodb", endpoint_url=aws_endpoints.dynamodb, **aws_local.CREDENTIALS)
    create_table(client, name)
    return aws_endpoints, name


def routing_file(path: Path, backends: str, catalog: str, orders: str) -> Path:
    path.write_text(
        "version: 1\n"
        f"backends:\n{backends}"
        "routes:\n"
        f"  - {{name: catalog, match: {{paths: ['/api/catalog/*']}}, targets: {catalog}}}\n"
        "  - name: orders\n"
        "    match: {paths: ['/api/orders', '/api/orders/*']}\n"
        f"    targets: {orders}\n"
        "    stickiness: {duration: 60}\n"
        "default: monolith\n"
    )
    return path


def _monolith_backend(server: MonolithServer) -> str:
    return f"  monolith: {{kind: monolith, url: '{server.base_url}'}}\n"


# Local deployments of the shop, each started once per session when a test asks for it.


@pytest.fixture(scope="session")
def facade_in_front(
    pg_monolith: MonolithServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    routing = routing_file(
        tmp_path_factory.mktemp("contract") / "routing.yaml",
        _monolith_backend(pg_monolith),
        "monolith",
        "monolith",
    )
    with proxy(routing) as running:
        yield running.url


@pytest.fixture(scope="session")
def catalog_service(pg_monolith: MonolithServer) -> Iterator[str]:
    with (
        scratch_database("strangler_cat") as url,
        catalog_server(url, pg_monolith.database_url) as s,
    ):
        yield s.base_url


@pytest.fixture(scope="session")
def facade_catalog(
    pg_monolith: MonolithServer, catalog_service: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    routing = routing_file(
        tmp_path_factory.mktemp("contract") / "routing.yaml",
        _monolith_backend(pg_monolith) + f"  catalog: {{kind: ecs, url: '{catalog_service}'}}\n",
        "{catalog: 100}",
        "monolith",
    )
    with proxy(routing) as running:
        yield running.url


@pytest.fixture(scope="session")
def orders_env(
    pg_monolith: MonolithServer, orders_table: tuple[aws_local.Endpoints, str]
) -> dict[str, str]:
    endpoints, table = orders_table
    return orders_environment(pg_monolith.base_url, endpoints, table)


@pytest.fixture(scope="session")
def orders_lambda(orders_env: dict[str, str]) -> Iterator[str]:
    with orders_function(orders_env) as server:
        yield server.base_url


@pytest.fixture(scope="session")
def facade_orders(
    pg_monolith: MonolithServer,
    orders_env: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[str]:
    handler = "extracted.orders.handler:lambda_handler"
    routing = routing_file(
        tmp_path_factory.mktemp("contract") / "routing.yaml",
        _monolith_backend(pg_monolith) + f"  orders: {{kind: lambda, handler: '{handler}'}}\n",
        "monolith",
        "{orders: 100}",
    )
    with proxy(routing, env=orders_env) as running:
        yield running.url


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings: Settings) -> None:
    settings.PASSWORD_HASHERS = FAST_HASHERS.split(",")


@pytest.fixture(autouse=True, scope="session")
def _quiet_http_client_logs() -> None:
    logging.getLogger("httpx").setLevel(logging.WARNING)
