"""Which version of a Lambda function answers one invocation, as AWS picks it.

A Lambda backend with a ``canary:`` block runs two versions here (two module paths, or
one module from two code directories), and each invocation goes to the new one with the
block's ``weight`` — independently per invocation, with no stickiness, which is what
both AWS mechanisms do: an alias with ``AdditionalVersionWeights`` draws per invocation,
and an API Gateway stage canary draws per request. The facade's per-version series
(``strangler_facade_lambda_invocations_total{backend,version}``) then play CloudWatch's
``ExecutedVersion`` dimension and the stage's canary metrics for the local analysis.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from facade.rollout.plan import LocalVersion
from facade.routing.model import SHARE_TOTAL, Backend


def pick(
    backend: Backend, draw: Callable[[], float] = random.random
) -> tuple[str, LocalVersion] | None:
    """(version, how to run it) for one invocation, or None when the backend has no
    versions here (its ``handler`` runs)."""
    canary = backend.canary
    if canary is None or not canary.local:
        return None
    new = canary.share and draw() * SHARE_TOTAL < canary.share
    label = canary.canary if new else canary.baseline
    return label, canary.local[label]


__all__ = ["pick"]
