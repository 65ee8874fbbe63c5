"""Edge cases: a sync worker outlives a database restart (PostgreSQL)."""

from __future__ import annotations

import psycopg
import pytest
from django.db import connection

from facade.sync.django import inbox
from facade.sync.django.models import EntityVersion
from monolith.customers.models import Customer
from monolith.orders.models import Order
from tests.sync_edges.test_inbox_consumer import _held, _lambda_change, _placed_here

pytestmark = [pytest.mark.postgresql, pytest.mark.django_db(transaction=True)]


def test_held_the_inbox_reconnects_after_its_connection_was_killed(buyer: Customer) -> None:
    """The server ends the consumer's session (a restart, a failover,
    pg_terminate_backend): the change in hand fails, the next one reconnects and applies."""
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL: a server that ends sessions")
    order = _placed_here(buyer)
    paid = _lambda_change(order, "paid", 2, _held(order))
    pid = connection.connection.info.backend_pid
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    params.pop("prepare_threshold", None)
    with psycopg.connect(**params, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [pid])
    first = inbox.apply_batch([paid])
    second = inbox.apply_batch([paid]) if isinstance(first[0], BaseException) else first
    assert second == [True], (first, second)
    assert Order.objects.get(pk=order.pk).status == "paid"
    assert EntityVersion.objects.get(object_id=str(order.pk)).version == 2
