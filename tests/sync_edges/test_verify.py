"""Review of `strangler sync verify`'s comparison (facade/sync/digest.py): formatting
that is not drift must digest alike, and every real difference must not."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from facade.sync.digest import digest


def test_formatting_that_is_not_drift_digests_alike() -> None:
    """(Held.) Decimal places, a moment's offset and precision, JSON escapes, null vs
    absent."""
    assert digest({"price": "10.50"}) == digest({"price": Decimal("10.5")})
    assert digest({"at": "2026-01-01T01:00:00+01:00"}) == digest(
        {"at": dt.datetime(2026, 1, 1, tzinfo=dt.UTC)}
    )
    assert digest({"at": "2026-01-01T00:00:00Z"}) == digest({"at": "2026-01-01T00:00:00.000000Z"})
    assert digest({"name": "Caf\u00e9"}) == digest({"name": "Café"})
    assert digest({"note": None}) == digest({})


@pytest.mark.parametrize(
    ("source", "target"),
    [
        # two different SKUs / codes that happen to look like numbers
        ({"id": 1, "sku": "10.10"}, {"id": 1, "sku": "10.1"}),
        ({"id": 1, "sku": "0.50"}, {"id": 1, "sku": "00.5"}),
        # a product name or free text that happens to look like a moment
        ({"id": 1, "name": "2026-01-01 10:00:00+02:00"}, {"id": 1, "name": "2026-01-01T08:00:00Z"}),
        # an ordered list kept in a JSON column (a product's images, first one shown)
        (
            {"id": 1, "images": ["front.jpg", "back.jpg"]},
            {"id": 1, "images": ["back.jpg", "front.jpg"]},
        ),
    ],
)
def test_a_real_difference_in_text_or_order_is_drift(
    source: dict[str, object], target: dict[str, object]
) -> None:
    """canonical() rewrites every string that looks like a decimal or a moment, and sorts
    every list, whatever the field: two different SKUs "10.10" and "10.1", a text that
    reads like a time, or a reordered list compare equal, and `verify` reports zero drift
    where the sides differ. The normalising must follow the field's type (the
    serialiser knows it: Decimal and datetime columns, an order's lines), not the text's
    look."""
    assert digest(source) != digest(target)
