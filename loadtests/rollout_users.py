"""The orders traffic of ``loadtests/rollout_load.py``: the shop's buyers, quicker (a
rollout judges per request, so a run needs a few thousand of them in minutes)."""

from __future__ import annotations

from locust import between
from locustfile import Buyer


class QuickBuyer(Buyer):
    weight = 1
    wait_time = between(0.1, 0.5)


del Buyer  # locust runs every HttpUser class it finds here: only this one
