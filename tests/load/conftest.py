"""The load-test scripts live in loadtests/ as plain scripts; their modules import each
other by name, as locust and ``python loadtests/…`` do."""

from __future__ import annotations

import sys
from pathlib import Path

LOADTESTS = Path(__file__).resolve().parents[2] / "loadtests"
if str(LOADTESTS) not in sys.path:
    sys.path.insert(0, str(LOADTESTS))
