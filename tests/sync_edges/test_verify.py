"""`strangler sync verify`'s comparison (facade/sync/digest.py): formatting that is not
drift digests alike."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from facade.sync.digest import digest


def test_formatting_that_is_not_drift_digests_alike() -> None:
    """Decimal places, a moment's offset and precision, JSON escapes, null vs
    absent."""
    assert digest({"price": "10.50"}) == digest({"price": Decimal("10.5")})
    assert digest({"at": "2026-01-01T01:00:00+01:00"}) == digest(
        {"at": dt.datetime(2026, 1, 1, tzinfo=dt.UTC)}
    )
    assert digest({"at": "2026-01-01T00:00:00Z"}) == digest({"at": "2026-01-01T00:00:00.000000Z"})
    assert digest({"name": "Caf\u00e9"}) == digest({"name": "Café"})
    assert digest({"note": None}) == digest({})
