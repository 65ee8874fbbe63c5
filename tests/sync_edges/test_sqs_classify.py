"""How the sync's workers judge what SQS answered (facade/sync/sqs.py:classify),
for the error codes SQS's own API model lists for SendMessage(Batch) and ReceiveMessage
(botocore's service model: KmsDisabled, KmsInvalidState, KmsNotFound, KmsOptInRequired,
KmsInvalidKeyUsage, OverLimit, …)."""

from __future__ import annotations

import threading

import pytest

from facade.sync import sqs
from tests.sync_edges.fakes import client_error


@pytest.mark.parametrize(
    "code",
    ["KmsDisabled", "KmsNotFound", "KmsInvalidState", "KmsOptInRequired", "KmsInvalidKeyUsage"],
)
def test_a_queue_kms_key_that_cannot_be_used_is_a_configuration_problem(code: str) -> None:
    """400 Kms*: the queue's key is disabled, deleted, pending, or of the wrong usage —
    only a person can fix it. classify() knows KmsAccessDenied but none of these, so a
    relay parks every change (tests/sync_edges/test_relay.py) and a consumer logs a
    traceback every few seconds for ever instead of exiting 2 with what to fix."""
    assert sqs.classify(client_error(code, 400, "ReceiveMessage")) == "configuration"


def test_too_many_messages_in_flight_is_waited_out_not_a_reason_to_exit() -> None:
    """ReceiveMessage answers OverLimit (HTTP 403, SQS API reference) when the queue's
    in-flight limit is reached — it clears as messages are deleted or come back. classify()
    reads every 403 it does not know as a configuration problem, so every poller of the
    consumer stops (exit 2) and `strangler up` takes the whole stack down with it."""
    error = client_error("OverLimit", 403, "ReceiveMessage")
    assert sqs.classify(error) == "transient"
    stop = threading.Event()
    calls = []

    def step() -> bool:
        calls.append(1)
        if len(calls) == 1:
            raise error
        stop.set()
        return True

    sqs.run_worker("consumer", step, stop, wait=lambda _: None)  # must not raise
    assert len(calls) == 2
