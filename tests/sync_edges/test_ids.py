"""New order ids (facade/sync/django/ids.py) on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.core.management import call_command

from monolith.customers.models import Customer
from monolith.orders import services
from monolith.orders.models import Order
from tests.monolith.conftest import make_product

pytestmark = pytest.mark.django_db(transaction=True)


def test_orders_loaded_from_a_fixture_do_not_take_the_next_new_orders_ids(
    buyer: Customer, tmp_path: Path
) -> None:
    """`manage.py loaddata` is how teams bring in orders with their ids (a support
    case, a staging copy). Django resets a table's own sequence after loaddata, so this
    just works without the toolkit; with it, new orders take ids from the toolkit's
    counter, which loaddata does not move (ids.assign returns early for raw saves), so
    the next order placed collides with a loaded one (IntegrityError: a 500 to the
    customer) unless someone remembers to call ids.resync by hand."""
    product = make_product("FIX", 10)
    first = services.place_order(buyer, [services.LineRequest(product.pk, 1)])
    loaded = first.pk + 1
    fixture = tmp_path / "orders.json"
    fixture.write_text(
        json.dumps(
            [
                {
                    "model": "orders.order",
                    "pk": loaded,
                    "fields": {
                        "customer": buyer.pk,
                        "status": "placed",
                        "currency": "EUR",
                        "total": "10.00",
                        "placed_at": "2026-01-01T00:00:00Z",
                        "updated_at": "2026-01-01T00:00:00Z",
                    },
                }
            ]
        )
    )
    call_command("loaddata", str(fixture), verbosity=0)
    assert Order.objects.filter(pk=loaded).exists()
    second = services.place_order(buyer, [services.LineRequest(product.pk, 1)])
    assert second.pk not in (first.pk, loaded)
