"""The monolith's fixtures, for the tests of the sync's edge cases."""

from tests.monolith.conftest import buyer

__all__ = ["buyer"]
