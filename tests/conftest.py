"""Fixtures shared by every test package, and the options of the contract suite."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator

import boto3
import pytest
from pytest_django.fixtures import Settings

from extracted.orders.store import create_table
from facade import aws_local
from tests.servers import FAST_HASHERS, MonolithServer, monolith_server, scratch_database


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
def aws_endpoint() -> Iterator[str]:
    """The AWS-API stand-in (moto's server) on a free loopback port, for the session."""
    with aws_local.running() as endpoint:
        yield endpoint


@pytest.fixture(scope="session")
def orders_table(aws_endpoint: str) -> tuple[str, str]:
    """(endpoint, name) of a fresh orders table in the stand-in."""
    name = f"orders-{uuid.uuid4().hex[:8]}"
    client = boto3.client("dynamodb", endpoint_url=aws_endpoint, **aws_local.CREDENTIALS)
    create_table(client, name)
    return aws_endpoint, name


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings: Settings) -> None:
    settings.PASSWORD_HASHERS = FAST_HASHERS.split(",")


@pytest.fixture(autouse=True, scope="session")
def _quiet_http_client_logs() -> None:
    logging.getLogger("httpx").setLevel(logging.WARNING)
