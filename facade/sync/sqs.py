"""The one place the sync creates SQS clients and judges what SQS answered.

``client()`` is boto3's SQS client with botocore's **adaptive** retry mode (exponential
backoff with jitter, and client-side rate limiting once SQS throttles) and timeouts that
fit long polling. The endpoint comes from boto3's own configuration
(``AWS_ENDPOINT_URL_SQS`` points it at a local stand-in) unless one is given: the same
code talks to AWS and to the stand-ins.

What botocore gives up on reaches ``classify``: a **transient** failure (throttling, a
5xx, a lost connection or a timeout) is retried by the worker after ``Backoff``; a
**configuration** failure (no such queue, no credentials or region, access denied)
cannot heal by waiting, so the worker stops with a ``ConfigurationProblem`` that says
what to fix. Per-entry failures of ``SendMessageBatch`` are judged by SQS's own
``SenderFault`` flag: a refused entry (too large, invalid characters) never succeeds
as it is, the others are worth another try.

``run_worker`` is the loop every sync worker runs (relays, consumers, the local Lambda
event source): one step at a time until stopped, backing off on transient failures,
exiting only on a configuration problem.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionError,
    HTTPClientError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
)

__all__ = [
    "CONFIG",
    "Backoff",
    "ConfigurationProblem",
    "classify",
    "client",
    "run_worker",
]

log = logging.getLogger("strangler.sync")

# Long polls wait up to 20 s: the read timeout must outlast them.
CONFIG = Config(
    retries={"mode": "adaptive", "max_attempts": 6},
    connect_timeout=5,
    read_timeout=30,
    max_pool_connections=20,
)

TRANSIENT_CODES = frozenset(
    {
        "Throttling", "ThrottlingException", "RequestThrottled", "RequestLimitExceeded",
        "TooManyRequestsException", "ServiceUnavailable", "InternalError", "InternalFailure",
        "KmsThrottled", "AWS.SimpleQueueService.RequestThrottled",
        "OverLimit",  # too many messages in flight: some are deleted or come back soon
    }
)  # fmt: skip
CONFIGURATION_CODES = {
    "AWS.SimpleQueueService.NonExistentQueue": "the queue does not exist: create it "
    "(`strangler render sam`, or the local stand-ins' set-up) or fix the stream's `queue`",
    "QueueDoesNotExist": "the queue does not exist: create it or fix the stream's `queue`",
    "AccessDenied": "the credentials may not use this queue: see `strangler render iam`",
    "AccessDeniedException": "the credentials may not use this queue: see `strangler render iam`",
    "InvalidClientTokenId": "the AWS access key is not valid",
    "UnrecognizedClientException": "the AWS access key is not valid",
    "SignatureDoesNotMatch": "the AWS secret key does not match the access key",
    "InvalidSecurity": "the request must use HTTPS and SigV4",
    "KmsAccessDenied": "the queue's KMS key may not be used by these credentials",
    "KmsDisabled": "the queue's KMS key is disabled: enable it or change the queue's key",
    "KmsNotFound": "the queue's KMS key does not exist: change the queue's key",
    "KmsInvalidState": "the queue's KMS key cannot be used in its state (pending deletion?)",
    "KmsInvalidKeyUsage": "the queue's KMS key is not a symmetric encryption key",
    "KmsOptInRequired": "the account is not subscribed to KMS",
    "UnsupportedOperation": "the queue does not support this call (is it a FIFO queue?)",
    "InvalidAddress": "the queue URL is not valid: fix the stream's `queue`",
}


class ConfigurationProblem(Exception):
    """SQS refused in a way that waiting cannot fix; the message says what to fix."""


def client(endpoint_url: str | None = None, **credentials: Any) -> Any:
    """An SQS client (boto3 finds endpoint, region and credentials unless given)."""
    if endpoint_url:
        credentials["endpoint_url"] = endpoint_url
    try:
        return boto3.client("sqs", config=CONFIG, **credentials)
    except NoRegionError as exc:
        raise ConfigurationProblem(explain(exc)) from exc


def classify(exc: BaseException) -> str | None:
    """``"transient"``, ``"configuration"``, or None for an error not SQS's."""
    if isinstance(exc, NoCredentialsError | PartialCredentialsError | NoRegionError):
        return "configuration"
    if isinstance(exc, ConnectionError | HTTPClientError):
        return "transient"  # refused, reset, timed out, closed
    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code", ""))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        if code in CONFIGURATION_CODES:
            return "configuration"
        if code in TRANSIENT_CODES or status >= 500 or status == 429:
            return "transient"
        return "configuration" if status in (401, 403) else None
    if isinstance(exc, BotoCoreError):
        return "transient"
    return None


def explain(exc: BaseException) -> str:
    """What to fix for a configuration problem."""
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return "no AWS credentials: set a profile or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"
    if isinstance(exc, NoRegionError):
        return "no AWS region: set AWS_REGION (or AWS_DEFAULT_REGION) or a profile's region"
    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code", ""))
        hint = CONFIGURATION_CODES.get(code, "SQS refused the credentials")
        return f"{code}: {hint} ({exc})"
    return str(exc)


def refused_for_good(failure: dict[str, Any]) -> bool:
    """A ``SendMessageBatch`` entry failure that will fail again as it is."""
    return bool(failure.get("SenderFault"))


@dataclass
class Backoff:
    """Exponential backoff with full jitter (waits ``0..min(cap, base·2^n)``)."""

    base: float = 0.2
    cap: float = 20.0
    rng: random.Random = field(default_factory=random.Random)
    failures: int = 0

    def next(self) -> float:
        ceiling = min(self.cap, self.base * 2**self.failures)
        self.failures += 1
        return self.rng.uniform(0, ceiling)

    def reset(self) -> None:
        self.failures = 0


def run_worker(
    name: str,
    step: Callable[[], bool],
    stop: threading.Event,
    *,
    idle: float = 0.2,
    backoff: Backoff | None = None,
    wait: Callable[[float], object] | None = None,
) -> None:
    """Call ``step`` until ``stop`` is set; ``step`` returns True when it did work (no
    pause before the next). Transient failures — SQS's and the database's alike — are
    logged and retried after a backoff; a configuration problem raises
    ``ConfigurationProblem``."""
    backoff = backoff or Backoff()
    pause = wait or stop.wait
    while not stop.is_set():
        try:
            busy = step()
        except Exception as exc:
            kind = classify(exc)
            if kind == "configuration":
                raise ConfigurationProblem(f"{name}: {explain(exc)}") from exc
            delay = backoff.next()
            if kind == "transient":
                log.warning("%s: SQS unavailable (%s); retrying in %.1fs", name, exc, delay)
            else:
                log.exception("%s: step failed; retrying in %.1fs", name, delay)
            pause(delay)
            continue
        backoff.reset()
        if not busy:
            pause(idle)
